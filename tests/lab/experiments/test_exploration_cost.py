"""The exploration sweep's options and summary: shares checked, 0 always played, each share
compared with no exploration seed by seed."""

import pytest

from lab.experiments.exploration_cost import exploration_summary, parse_shares


def test_shares_are_checked_and_zero_is_always_played():
    assert parse_shares(None) == (0.0, 0.02, 0.05)
    assert parse_shares("0.05, 0.02") == (0.0, 0.02, 0.05)
    for bad in ("0.5", "x", "-0.1"):
        with pytest.raises(ValueError, match="--exploration-shares"):
            parse_shares(bad)


def row(share, seed, cmae, used, explored, tiles):
    return {"exploration_share": share, "seed": seed, "budget_fraction": 0.1,
            "energy_fraction": 1.0, "cmae": cmae, "relative_cmae": cmae / 10,
            "bytes_used": used, "exploration_bytes": explored, "exploration_tiles": tiles,
            "scenes": 4}


def test_each_share_is_compared_with_none_at_the_same_seeds():
    rows = [row(0.0, 0, 2.0, 1000, 0, 0), row(0.0, 1, 3.0, 1000, 0, 0),
            row(0.05, 0, 2.5, 1000, 50, 1), row(0.05, 1, 3.1, 1000, 30, 1)]
    s = exploration_summary(rows)
    none, some = s["shares"]
    assert none["cmae_change"] == 0 and some["cmae"] == pytest.approx(2.8)
    assert some["cmae_change"] == pytest.approx(0.3)
    assert some["cmae_change_stderr"] == pytest.approx(0.2)
    assert some["exploration_bytes_share"] == pytest.approx(0.04)
    assert some["exploration_tiles_per_scene"] == pytest.approx(0.25)
