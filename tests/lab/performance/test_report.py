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


def test_peak_memory_against_tiles_is_judged_on_real_model_rows():
    from lab.performance.report import _tiles_memory_target, memory_tiles_table

    row = {"scene": "5120 px", "imagery": "airbus", "gsd_m": 0.5, "tile_size": 256,
           "seconds": 60.0, "digest": "ab", "stub": False}
    memory = [{**row, "tiles": 400, "peak_rss_mb": 300.0, "rss_ratio_to_first": 1.0},
              {**row, "scene": "40960 px", "tiles": 25600, "peak_rss_mb": 390.0,
               "rss_ratio_to_first": 1.3},
              {**row, "tiles": 6400, "peak_rss_mb": 100.0, "stub": True,
               "rss_ratio_to_first": 0.3}]
    target = _tiles_memory_target(memory)
    assert "390 MB, 1.30x the 5120 px scene's 300 MB" in target and "**missed**" in target
    assert _tiles_memory_target(memory[:1] + memory[2:]) is None  # one real row: no target
    table = memory_tiles_table(memory)
    assert "| 40960 px (airbus) | 0.5 | 25,600 | 256 | real | 60 | 390.0 | 1.300x |" in table
    assert "| stubbed |" in table
