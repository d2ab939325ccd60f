"""The fault-injection suite (``lab.reliability.faults``): both services as processes, one fault per
run, and bad inputs against running services. Every figure must read zero, every bad input
a clear 4xx or a REJECTED with its reason; and docs/RELIABILITY.md must agree with the
suite's committed results."""

from __future__ import annotations

import pytest

from lab.evaluation.report import render
from lab.reliability.faults import RESULTS, SCENARIOS, run_suite
from lab.reliability.report import DOC, tables


@pytest.mark.slow
@pytest.mark.integration
def test_no_fault_loses_doubles_or_strands_anything(tmp_path):
    result = run_suite(tmp_path)
    for row in result["scenarios"]:
        assert (row["lost"], row["counted_twice"], row["stuck"], row["server_errors"]) == \
            (0, 0, 0, 0), row
        assert row["total_matches_reference"] and row["onboard_state"] == "delivered", row
        assert sum(row["left_behind"].values()) == 0, row
        assert row["tiles_downlinked"] >= 2, row  # a fault lands mid-downlink
    cut = next(r for r in result["scenarios"] if r["scenario"] == "connections cut mid-stream")
    assert cut["relay_cuts"] >= 1  # the acknowledgements really were lost
    bad = result["bad_inputs"]
    assert all(c["clear_4xx"] for c in bad["cases"]), [c for c in bad["cases"]
                                                        if not c["clear_4xx"]]
    assert bad["left_behind"] == 0 and bad["server_errors"] == 0, bad["left_behind_by_place"]
    assert bad["good_scene_accepted"] and bad["ground_still_counting"]
    assert bad["forged_scene_kept_its_owner"] and bad["ground_lists_scenes"]


def test_the_reliability_document_agrees_with_the_suites_results():
    text = DOC.read_text()
    assert render(text, tables(RESULTS)) == text, "run targetfuse report-reliability"


def test_the_committed_results_cover_every_scenario():
    import json

    result = json.loads(RESULTS.read_text())
    assert [r["scenario"] for r in result["scenarios"]] == list(SCENARIOS)
    assert result["totals"]["lost"] == result["totals"]["stuck"] == 0
