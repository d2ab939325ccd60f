"""docs/EXPERIMENTS.md's tables are generated from the experiment runs' summaries, and agree."""

import json

import pytest

from lab.evaluation.report import render
from lab.experiments.report import DOC, RESULTS, budget_table, tables, targets_table
from shared.pipeline.baselines import BASELINES


def _summary(collab: float, onboard: float) -> dict:
    base = {name: 10.0 for name in BASELINES}
    base["onboard-only-zero"] = onboard
    point = {"energy_fraction": 1.0, "budget_fraction": 0.1, "collaborative": collab,
             "collaborative_relative": collab / 20, "baselines": base,
             "strongest": {"onboard-only": "onboard-only-zero", "vanilla": "vanilla",
                           "random": "random"},
             "efficiency": 12.0, "efficiency_is_lower_bound": False}
    return {"reported_on": {"images": "split.json:test", "part": "test", "scenes": 3,
                            "mean_truth": 20.0},
            "tuned_on": {"images": "split.json:val"}, "classes": ["ship"], "policy": "value",
            "uncounted": "context", "adaptive_tiling": False,
            "budget": {"ground_only_cmae": 3.0, "ground_only_corrected_cmae": 2.5,
                       "points": [point], "max_efficiency": {"efficiency": 12.0,
                                                             "budget_fraction": 0.1,
                                                             "lower_bound": False},
                       "targets": {"ample_ratio": collab / onboard,
                                   "ample_against": "onboard-only-zero", "scarce_ratio": 3.5,
                                   "scarce_against": "onboard-only", "ample_ratio_max": 0.7,
                                   "scarce_ratio_min": 3.0, "efficiency_min": 10.0}}}


def test_targets_say_met_or_missed_against_the_strongest_baseline():
    table = targets_table({"a": _summary(2.0, 4.0), "b": _summary(3.9, 4.0)})
    assert "| `a` | 0.50 against onboard-only-zero (met) | 3.50x against onboard-only (met) " \
           "| 12.0x at 10 % (met) | 3.00 / 2.50 |" in table
    assert "0.97 against onboard-only-zero (missed)" in table


def test_budget_table_marks_the_strongest_member_of_each_family():
    table = budget_table("a", _summary(2.0, 4.0))
    assert "| collaborative (value) | **2.00** |" in table
    assert "| onboard-only-zero | 4.00 (strongest) |" in table
    assert "| onboard-only | 10.00 |" in table


def test_tables_come_from_every_run_folder(tmp_path):
    (tmp_path / "ships").mkdir()
    (tmp_path / "ships" / "summary.json").write_text(json.dumps(_summary(2.0, 4.0)))
    (tmp_path / "no-budget").mkdir()
    (tmp_path / "no-budget" / "summary.json").write_text(json.dumps({"dedup": []}))
    got = tables(tmp_path)
    assert set(got) == {"experiments-protocol", "experiments-targets",
                        "experiments-budget-ships"}
    assert "| `ships` | ship | split.json:test | 3 | 20.0 | split.json:val | value | " \
           "context | natural tiles (no calibrated size) |" in got["experiments-protocol"]


def test_experiments_document_agrees_with_the_result_files():
    generated = tables(RESULTS)
    if not generated:
        pytest.skip(f"no experiment summaries under {RESULTS}")
    text = DOC.read_text()
    assert render(text, generated) == text, "run `targetfuse report-experiments`"


def test_compute_cost_table_lists_each_cost_and_energy():
    from lab.experiments.report import compute_cost_table

    row = {"compute_cost": "default", "j_per_flop": 5e-10, "energy_fraction": 0.5,
           "collaborative": 2.0, "onboard_only": 8.0, "onboard_only_variant": "onboard-only",
           "vanilla": 4.0, "vanilla_variant": "vanilla-resized",
           "collaborative_over_onboard_only": 0.25, "collaborative_over_vanilla": 0.5}
    table = compute_cost_table({"a": {"compute_cost": [row]}})
    assert "| `a` | default | 5e-10 | 0.5 | 2.00 | 8.00 (onboard-only) | 0.25 | 4.00 " \
           "(vanilla-resized) | 0.50 |" in table
