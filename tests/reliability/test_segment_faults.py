"""The fault suite on the ground segment (``lab.reliability.segment_faults``): a station and
counting workers on PostgreSQL and NATS, as processes. One case live (the poison tile: the most the
segment's queue logic must get right, and short), and the committed results of every case
(``docs/reliability/segment_faults.json``, what docs/RELIABILITY.md shows) must read zero.
Skips without PostgreSQL or NATS."""

from __future__ import annotations

import json

import pytest

from lab.reliability.cli import run_segment_suite
from lab.reliability.segment_faults import SCENARIOS, SEGMENT_RESULTS


def check(row: dict) -> None:
    assert (row["lost"], row["counted_twice"], row["stuck"], row["server_errors"]) == \
        (0, 0, 0, 0), row
    assert row["counts_match_reference"] and row["onboard_state"] == "delivered", row
    assert sum(row["left_behind"].values()) == row["left_in_queue"] == 0, row
    assert row["innocent_quarantined"] == [] and row["tiles_downlinked"] >= 2, row


@pytest.mark.integration
def test_a_poison_tile_is_quarantined_and_every_other_tile_counted(tmp_path, nats_url):
    from lab.services.live import dev_postgres
    from lab.services.segment import missing

    if reason := missing(dev_postgres(), nats_url):
        pytest.skip(reason)
    result = run_segment_suite(tmp_path, dev_postgres(), nats_url, ["poison tile"],
                               bad_inputs=False)
    reference, poison = result["scenarios"]
    check(reference)
    check(poison)
    # One tile set aside after its tries, not retried forever; no good tile with it.
    assert poison["quarantined"] == poison["poisoned"] and len(poison["poisoned"]) == 1
    assert 1 <= poison["poison_tries"] <= result["segment"]["max_deliver"]


def check_bad_inputs(bad: dict) -> None:
    unclear = [c for c in bad["cases"] if not c["clear_4xx"]]
    assert unclear == [] and bad["server_errors"] == bad["left_behind"] == 0, bad
    flags = {k: v for k, v in bad.items() if isinstance(v, bool)}
    assert all(flags.values()), flags
    assert {c["interface"] for c in bad["cases"]} == {"onboard REST", "ground link",
                                                      "segment queue"}


@pytest.mark.integration
def test_bad_inputs_against_the_segment_are_refused_and_leave_nothing(tmp_path, nats_url):
    """Issue 26: the battery of bad uploads and link parts against a station and a worker
    on PostgreSQL and NATS, plus messages no station publishes put on the queue, and a
    message squatting on the id of a tile about to come (finding 9: its scene waited 138 s
    for the sweep before the fix; now its tiles are counted at once)."""
    from lab.reliability.segment_bad_inputs import run_segment_bad_inputs
    from lab.services.live import dev_postgres
    from lab.services.segment import missing

    if reason := missing(dev_postgres(), nats_url):
        pytest.skip(reason)
    bad = run_segment_bad_inputs(tmp_path, dev_postgres(), nats_url)
    check_bad_inputs(bad)
    assert bad["squatted_scene"]["longest_count_wait_s"] < 30


def test_the_committed_segment_results_cover_every_case_and_read_zero():
    result = json.loads(SEGMENT_RESULTS.read_text())
    assert [r["scenario"] for r in result["scenarios"]] == list(SCENARIOS)
    for row in result["scenarios"]:
        check(row)
    check_bad_inputs(result["bad_inputs"])
    assert result["totals"]["bad_inputs_clear_4xx"] == result["totals"]["bad_inputs"]
    worker = next(r for r in result["scenarios"] if r["scenario"].startswith("worker"))
    assert worker["redeliveries"] >= 1  # the worker really died holding tiles
