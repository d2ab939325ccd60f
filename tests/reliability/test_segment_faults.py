"""The fault suite on the ground segment (``lab.segment_faults``): a station and counting
workers on PostgreSQL and NATS, as processes. One case live (the poison tile: the most the
segment's queue logic must get right, and short), and the committed results of every case
(``docs/reliability/segment_faults.json``, what docs/RELIABILITY.md shows) must read zero.
Skips without PostgreSQL or NATS."""

from __future__ import annotations

import json

import pytest

from lab.segment_faults import SCENARIOS, SEGMENT_RESULTS, run_segment_suite


def check(row: dict) -> None:
    assert (row["lost"], row["counted_twice"], row["stuck"], row["server_errors"]) == \
        (0, 0, 0, 0), row
    assert row["counts_match_reference"] and row["onboard_state"] == "delivered", row
    assert sum(row["left_behind"].values()) == row["left_in_queue"] == 0, row
    assert row["innocent_quarantined"] == [] and row["tiles_downlinked"] >= 2, row


@pytest.mark.integration
def test_a_poison_tile_is_quarantined_and_every_other_tile_counted(tmp_path, nats_url):
    from lab.live import dev_postgres
    from lab.segment import missing

    if reason := missing(dev_postgres(), nats_url):
        pytest.skip(reason)
    result = run_segment_suite(tmp_path, dev_postgres(), nats_url, ["poison tile"])
    reference, poison = result["scenarios"]
    check(reference)
    check(poison)
    # One tile set aside after its tries, not retried forever; no good tile with it.
    assert poison["quarantined"] == poison["poisoned"] and len(poison["poisoned"]) == 1
    assert 1 <= poison["poison_tries"] <= result["segment"]["max_deliver"]


def test_the_committed_segment_results_cover_every_case_and_read_zero():
    result = json.loads(SEGMENT_RESULTS.read_text())
    assert [r["scenario"] for r in result["scenarios"]] == list(SCENARIOS)
    for row in result["scenarios"]:
        check(row)
    worker = next(r for r in result["scenarios"] if r["scenario"].startswith("worker"))
    assert worker["redeliveries"] >= 1  # the worker really died holding tiles
