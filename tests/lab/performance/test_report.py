"""docs/PERFORMANCE.md's tables are generated from the benchmarks' result files, and agree."""

import json

import pytest

from lab.evaluation.report import render
from lab.performance import report


def _onboard(rss20k: float, share: float) -> dict:
    row = {"tiles": 400, "inferences": 390, "seconds": 10.0, "seconds_per_tile": 0.025,
           "raw_inference_seconds": 10.0 * share, "inference_share": share,
           "peak_rss_mb": 300.0}
    return {"machine": "x86_64, 2 cores", "rows": [
        {"format": "tif", "side_px": 5120, **row},
        {"format": "tif", "side_px": 20480, **row, "peak_rss_mb": rss20k},
        {"format": "png", "side_px": 20480, "error": "not finished in 60 s"}]}


def test_targets_say_met_or_missed_with_the_figures():
    planning = {"rows": [{"tiles": 25, "per_tile_vs_smallest": 1.0},
                         {"tiles": 6400, "per_tile_vs_smallest": 1.7}]}
    ground = {"rows": [{"threads": 1, "busy_core": False, "ratio": 0.95},
                       {"threads": 2, "busy_core": True, "ratio": 0.85}]}
    table = report.targets_table(_onboard(330.0, 0.5), planning, ground)
    assert "| 50 % (GeoTIFF 5k) to 50 % (GeoTIFF 5k) | **missed** |" in table
    assert "| 330 MB, 1.10x the 5k's 300 MB | met |" in table
    assert "| 1.70x | **missed** |" in table
    assert "lowest 0.85x (2 threads, other core busy) | **missed** |" in table
    assert "2.00x the 5k's" in report.targets_table(_onboard(600.0, 0.95), None, None)
    assert "| 95 % (GeoTIFF 5k) to 95 % (GeoTIFF 5k) | met |" in report.targets_table(
        _onboard(600.0, 0.95), None, None)


def test_memory_and_time_tables_show_every_run_and_failures():
    onboard = _onboard(330.0, 0.5)
    assert "| GeoTIFF | 300 MB | 330 MB | 1.10x |" in report.memory_table(onboard)
    assert "| PNG | not finished in 60 s |" in report.onboard_time_table(onboard).replace(
        "| PNG | 20k | - | - ", "| PNG ")


def test_a_memory_only_run_shows_no_inference_share():
    onboard = _onboard(330.0, 0.5)
    row = {k: v for k, v in onboard["rows"][1].items()
           if k not in ("raw_inference_seconds", "inference_share")}
    onboard["rows"].append({**row, "side_px": 40960, "peak_rss_mb": 340.0})
    assert "| GeoTIFF | 40k | 400 | 390 | 10.0 | 0.0250 | not timed | - |" in \
        report.onboard_time_table(onboard)
    assert "| GeoTIFF | 300 MB | 330 MB | 340 MB | 1.13x |" in report.memory_table(onboard)
    assert "| 50 % (GeoTIFF 5k) to 50 % (GeoTIFF 5k) |" in report.targets_table(
        onboard, None, None)


def test_tables_come_from_the_result_files_present(tmp_path):
    (tmp_path / "onboard.json").write_text(json.dumps(_onboard(330.0, 0.5)))
    got = report.tables(tmp_path)
    assert set(got) == {"perf-targets", "perf-machine", "perf-onboard-time",
                        "perf-onboard-split", "perf-memory"}
    assert got["perf-machine"] == "Measured on: x86_64, 2 cores."


def test_performance_document_agrees_with_the_result_files():
    if not list(report.RESULTS.glob("*.json")):
        pytest.skip(f"no benchmark results under {report.RESULTS}")
    text = report.DOC.read_text()
    assert render(text, report.tables()) == text, "run `targetfuse report-performance`"
