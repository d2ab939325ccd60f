import json

from lab.evaluation.report import render
from lab.experiments.exploration_report import DOC, RESULTS, tables


def test_pipeline_document_agrees_with_the_exploration_results():
    generated = tables(RESULTS)
    assert set(generated) >= {"exploration-airbus-aircraft", "exploration-ships-google-earth"}
    text = DOC.read_text()
    assert render(text, generated) == text, "run `targetfuse report-exploration`"


def test_an_exploration_table_shows_each_share_against_none(tmp_path):
    share = {"cmae": 2.0, "relative_cmae": 0.1, "bytes_used": 2e6,
             "exploration_bytes_share": 0.0, "exploration_tiles_per_scene": 0.0}
    summary = {"reported_on": {"images": "s.json:test"}, "policy": "value",
               "uncounted": "zero",
               "exploration": {"scenes": 4, "seeds": 3, "budget_fraction": 0.1,
                               "energy_fraction": 1.0, "shares": [
                                   {**share, "exploration_share": 0.0, "cmae_change": 0.0,
                                    "cmae_change_stderr": 0.0},
                                   {**share, "exploration_share": 0.05, "cmae": 2.25,
                                    "cmae_change": 0.25, "cmae_change_stderr": 0.1,
                                    "exploration_bytes_share": 0.051,
                                    "exploration_tiles_per_scene": 0.5}]}}
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "budget-only").mkdir()
    (tmp_path / "budget-only" / "summary.json").write_text(json.dumps({"budget": {}}))
    got = tables(tmp_path)
    assert list(got) == ["exploration-x"]
    assert "| 0.05 | 2.250 | +0.250 ± 0.100 | 2.000 MB | 5.1% | 0.50 |" in got["exploration-x"]
    assert "4 scenes of `s.json:test`, 3 seeds" in got["exploration-x"]
