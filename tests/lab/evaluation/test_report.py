"""The counters' tables in models/README.md are generated from the result files, and agree."""

import pytest

from lab.evaluation.report import README, RESULTS, per_class_table, render, tables

RESULT = {"sources": [{"source": "s", "tiles": 4, "jaccard": {"onboard": 0.5, "ground": 0.6},
                       "ms_per_tile": {"onboard": 5.0, "ground": 50.0},
                       "confidence": {"auroc": 0.8, "auroc_nonempty": 0.7, "ece": 0.05,
                                      "right_rate": 0.75},
                       "classes": {"ship": {"images": 2, "objects": 60, "mean_truth": 30,
                                            "onboard": {"relative_cmae": 0.2,
                                                        "tile_mae": 0.4},
                                            "ground": {"relative_cmae": 0.1,
                                                       "tile_mae": 0.2, "total": 66.0}}}}]}


def test_tables_say_which_targets_are_met():
    table = per_class_table(RESULT)
    assert "| `s` | ship | 2 | 60 | 20.0 % | 10.0 % | 1.10x | 0.400 | 0.200 | -50 % |" in table
    assert "CMAE met, total met, tile MAE met" in table


def test_render_replaces_only_between_markers():
    text = "intro\n<!-- counters-per-class:begin -->\nold\n<!-- counters-per-class:end -->\nend"
    new = render(text, {"counters-per-class": "NEW"})
    assert new == "intro\n<!-- counters-per-class:begin -->\nNEW\n" \
                  "<!-- counters-per-class:end -->\nend"
    with pytest.raises(ValueError, match="markers"):
        render("no markers", {"counters-per-class": "x"})


def test_models_readme_agrees_with_the_result_files():
    generated = tables(RESULTS)
    if not generated:
        pytest.skip(f"no result files under {RESULTS}")
    text = README.read_text()
    assert render(text, generated) == text, "run `targetfuse report-counters`"


def test_leave_one_source_out_table_sits_beside_the_in_source_figure():
    from lab.evaluation.report import loso_table

    held = {"trained_on": ["a", "b"], "schedule": "12 epochs x 1600 crops",
            "sources": [{"source": "s", "classes": {"ship": {
                "objects": 60, "onboard": {"relative_cmae": 0.3, "tile_mae": 0.5}}}}]}
    table = loso_table(RESULT, [held])
    assert "| `s` | ship | 60 | 2 sources, 12 epochs x 1600 crops | 30.0 % | 20.0 % | - | " \
           "10.0 % | no ground counter |" in table
    ship = held["sources"][0]["classes"]["ship"]
    for ground, verdict in ((0.3, "met"), (0.31, "missed")):
        ship["ground"] = {"relative_cmae": ground}
        assert f"| {100 * ground:.1f} % | 10.0 % | {verdict} |" in loso_table(RESULT, [held])


def test_schedule_table_prices_the_short_schedule_against_the_full_one():
    from lab.evaluation.report import schedule_table

    full = {**RESULT, "schedule": "24 epochs x 1600 crops"}
    short = {"schedule": "12 epochs x 1600 crops", "sources": [{"source": "s", "classes": {
        "ship": {"objects": 60, "onboard": {"relative_cmae": 0.25}}}}]}
    table = schedule_table(full, short)
    assert "full schedule (24 epochs x 1600 crops)" in table
    assert "| `s` | ship | 60 | 20.0 % | 25.0 % | +5.0 points |" in table


def test_ground_options_table_shows_every_option_and_group():
    from lab.evaluation.report import ground_options_table

    group = {"objects": 60, "relative_cmae": 0.3, "tile_mae": 0.5}
    result = {"options": {"deep": {"mean_relative_cmae": 0.3, "tile_mae_vs_shallow": 1.2,
                                   "ms_per_tile": 70.0, "groups": {"s/ship": group}}}}
    table = ground_options_table(result)
    assert "| deep | 30.0 % | 1.200 | 70.0 | 30.0 % / 0.500 |" in table
    assert "`s/ship` rel. CMAE / tile MAE" in table


def test_count_scale_table_shows_each_counter_and_class():
    from lab.evaluation.report import count_scale_table

    fit = {"scale": 1.25, "groups": 2, "fit_relative_cmae_before": 0.4,
           "fit_relative_cmae_after": 0.3}
    table = count_scale_table({"fits": {"ground": {"ship": fit}}})
    assert "| ground | ship | 1.250 | 2 | 40.0 % | 30.0 % |" in table


def test_estimated_gsds_are_listed_when_few_and_summarised_when_many():
    from lab.evaluation.report import _estimates

    assert _estimates({"0.05": 4, "0.5": 4}) == "0.05 m: 4, 0.5 m: 4"
    many = {"0.11": 2, "0.12": 5, "0.14": 1, "0.2": 1, "none": 1}
    assert _estimates(many) == "median 0.12 m, 0.11-0.2 m over 9 images, none on 1"
