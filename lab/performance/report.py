"""``targetfuse report-performance``: the tables of ``docs/PERFORMANCE.md``, from the
benchmarks' result files.

Each benchmark (``benchmarks/``) writes its figures to a JSON file under
``docs/performance/`` (``onboard_scenes.py`` -> ``onboard.json``, ``planning_scaling.py`` ->
``planning.json``, ``ground_throughput.py`` -> ``ground.json``, ``link_goodput.py --json``
-> ``link.json``, ``onboard_memory.py --json`` -> ``memory.json``); this renders them
between ``<!-- NAME:begin/end -->`` markers: the targets
(met or missed, by how much), onboard time and inference's share of it, where onboard time
goes, peak memory by format and scene size, planning time against tiles, and ground
throughput against the raw forward. ``--check`` fails when the document differs from what
the files give (a test runs it), so no figure in the document is typed by hand.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lab.evaluation.report import add_report_command
from shared.paths import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "PERFORMANCE.md"
RESULTS = PROJECT_ROOT / "docs" / "performance"

INFERENCE_SHARE_MIN = 0.85  # issue 28's target
RSS_LIMIT_MB = 1024.0
RSS_GROWTH_MAX = 1.20  # 20k GeoTIFF against the 5k one
TILES_RSS_GROWTH_MAX = 1.20  # the 40k GeoTIFF (25,600 tiles) against the 5k one (400)
PLANNING_RATIO_MAX = 1.5  # time per tile at 6,400 tiles against 25
GROUND_RATIO_MIN = 0.90
LINK_RATIO_MIN = 0.90
FORMATS = {"tif": "GeoTIFF", "png": "PNG", "jpg": "JPEG"}


def _load(results: Path, name: str) -> dict | None:
    path = results / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _side(px: int) -> str:
    return f"{px // 1024}k" if px % 1024 == 0 else f"{px / 1000:g}k"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def onboard_time_table(onboard: dict) -> str:
    rows = ["| format | scene (px) | tiles | counted | processing (s) | per tile (s) | "
            "raw onnxruntime (s) | inference share (wall) | inference share (CPU) |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in onboard["rows"]:
        if "error" in r:
            rows.append(f"| {FORMATS[r['format']]} | {_side(r['side_px'])} | - | - | "
                        f"{r['error']} | - | - | - | - |")
            continue
        counted = f"{r['inferences']:,}" if "inferences" in r else "-"  # not recorded
        raw, share = ("not timed", "-") if "inference_share" not in r else (
            f"{r['raw_inference_seconds']:.1f}", f"{100 * r['inference_share']:.0f} %")
        cpu = f"{100 * r['inference_cpu_share']:.0f} %" if "inference_cpu_share" in r else "-"
        rows.append(f"| {FORMATS[r['format']]} | {_side(r['side_px'])} | {r['tiles']:,} | "
                    f"{counted} | {r['seconds']:.1f} | {r['seconds_per_tile']:.4f} "
                    f"| {raw} | {share} | {cpu} |")
    return "\n".join(rows)


def cpu_share(row: dict) -> float:
    """Inference's share of the processing's CPU time (what a second job on a shared machine
    does not inflate), else of its wall time (rows from before it was recorded)."""
    return row.get("inference_cpu_share", row["inference_share"])


def onboard_split_table(onboard: dict) -> str:
    profiled = [r for r in onboard["rows"] if r.get("profile_shares")]
    if not profiled:
        return "(no profiled run)"
    parts = sorted({p for r in profiled for p in r["profile_shares"]},  # ties by name
                   key=lambda p: (-max(r["profile_shares"].get(p, 0) for r in profiled), p))
    head = "| part | " + " | ".join(f"{FORMATS[r['format']]} {_side(r['side_px'])}"
                                     for r in profiled) + " |"
    rows = [head, "|---|" + "---|" * len(profiled)]
    for p in parts:
        rows.append(f"| {p} | " + " | ".join(f"{100 * r['profile_shares'].get(p, 0):.1f} %"
                                             for r in profiled) + " |")
    return "\n".join(rows)


def memory_table(onboard: dict) -> str:
    sides = sorted({r["side_px"] for r in onboard["rows"]})
    rows = ["| format | " + " | ".join(_side(s) for s in sides) + " | largest / 5k |",
            "|---|" + "---|" * (len(sides) + 1)]
    for fmt, name in FORMATS.items():
        got = {r["side_px"]: r for r in onboard["rows"] if r["format"] == fmt}
        if not got:
            continue
        cells = [f"{got[s]['peak_rss_mb']:.0f} MB" if s in got and "peak_rss_mb" in got[s]
                 else "-" for s in sides]
        ok = [s for s in sides if s in got and "peak_rss_mb" in got[s]]
        ratio = f"{got[ok[-1]]['peak_rss_mb'] / got[ok[0]]['peak_rss_mb']:.2f}x" \
            if len(ok) > 1 else "-"
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(rows)


def planning_table(planning: dict) -> str:
    rows = ["| tiles | scene (px) | preparing (s) | deciding (s) | per tile (ms) | "
            "per tile / at 25 |", "|---|---|---|---|---|---|"]
    for r in planning["rows"]:
        rows.append(f"| {r['tiles']:,} | {r['side_px']} | {r['prepare_s']:.2f} | "
                    f"{r['decide_s']:.2f} | {1000 * r['seconds_per_tile']:.2f} | "
                    f"{r['per_tile_vs_smallest']:.2f}x |")
    return "\n".join(rows)


def ground_table(ground: dict) -> str:
    rows = ["| torch threads | other core | precision | counting path (tiles/s) | "
            "raw forward (tiles/s) | ratio |", "|---|---|---|---|---|---|"]
    for r in ground["rows"]:
        rows.append(f"| {r['threads']} | {'busy' if r['busy_core'] else 'idle'} | "
                    f"{r['precision']}{' + 4 rotations' if r['tta'] else ''} | "
                    f"{r['counting_tiles_s']:.1f} | {r['raw_tiles_s']:.1f} | "
                    f"{r['ratio']:.2f}x |")
    return "\n".join(rows)


def link_table(link: list) -> str:
    rows = ["| tc rate | shaped (B/s) | goodput (B/s) | ratio | seconds |", "|---|---|---|---|---|"]
    rows += [f"| {r['rate']} | {r['shaped_B_s']:,.0f} | {r['goodput_B_s']:,.0f} | "
             f"{r['ratio']:.3f}x | {r['seconds']:.1f} |" for r in link]
    return "\n".join(rows)


def memory_tiles_table(memory: list[dict]) -> str:
    """Peak RSS against tiles (``benchmarks/onboard_memory.py``), each scene in a fresh
    process."""
    rows = ["| scene | GSD (m) | tiles | tile (px) | model | seconds | peak RSS (MB) | "
            "against the first row | decisions digest |", "|---|---|---|---|---|---|---|---|---|"]
    for r in memory:
        rows.append(f"| {r['scene']} ({r['imagery']}) | {r['gsd_m']:g} | {r['tiles']:,} | "
                    f"{r['tile_size']} | {'stubbed' if r['stub'] else 'real'} | "
                    f"{r['seconds']:.0f} | {r['peak_rss_mb']:.1f} | "
                    f"{r['rss_ratio_to_first']:.3f}x | `{r['digest']}` |")
    return "\n".join(rows)


def _tiles_memory_target(memory: list[dict]) -> str | None:
    real = [r for r in memory if not r["stub"]]
    if len(real) < 2:
        return None
    few, many = min(real, key=lambda r: r["tiles"]), max(real, key=lambda r: r["tiles"])
    ratio = many["peak_rss_mb"] / few["peak_rss_mb"]
    return (f"| peak RSS of a {many['tiles']:,}-tile scene within "
            f"{100 * (TILES_RSS_GROWTH_MAX - 1):.0f} % of a {few['tiles']:,}-tile one's (real "
            f"model) | {many['peak_rss_mb']:.0f} MB, {ratio:.2f}x the {few['scene']} scene's "
            f"{few['peak_rss_mb']:.0f} MB | {_verdict(ratio <= TILES_RSS_GROWTH_MAX)} |")


def targets_table(onboard: dict | None, planning: dict | None, ground: dict | None,
                  link: list | None = None, memory: list | None = None) -> str:
    rows = ["| target | measured | verdict |", "|---|---|---|"]
    if onboard:
        ok = [r for r in onboard["rows"] if "inference_share" in r]
        if ok:
            low, high = min(ok, key=cpu_share), max(ok, key=cpu_share)
            rows.append(f"| onboard inference >= {100 * INFERENCE_SHARE_MIN:.0f} % of processing"
                        f" (CPU time) | {100 * cpu_share(low):.0f} % ({FORMATS[low['format']]} "
                        f"{_side(low['side_px'])}) to {100 * cpu_share(high):.0f} % "
                        f"({FORMATS[high['format']]} {_side(high['side_px'])}) | "
                        f"{_verdict(cpu_share(low) >= INFERENCE_SHARE_MIN)} |")
        tif = {r["side_px"]: r for r in onboard["rows"]
               if r["format"] == "tif" and "peak_rss_mb" in r}
        if 5120 in tif and 20480 in tif:
            a, b = tif[5120]["peak_rss_mb"], tif[20480]["peak_rss_mb"]
            rows.append(f"| 20k GeoTIFF within {RSS_LIMIT_MB:.0f} MB, peak RSS within "
                        f"{100 * (RSS_GROWTH_MAX - 1):.0f} % of the 5k one's | {b:.0f} MB, "
                        f"{b / a:.2f}x the 5k's {a:.0f} MB | "
                        f"{_verdict(b <= RSS_LIMIT_MB and b / a <= RSS_GROWTH_MAX)} |")
    if memory and (row := _tiles_memory_target(memory)):
        rows.append(row)
    if planning:
        last = planning["rows"][-1]
        rows.append(f"| planning time per tile at {last['tiles']:,} tiles within "
                    f"{PLANNING_RATIO_MAX}x of at {planning['rows'][0]['tiles']} | "
                    f"{last['per_tile_vs_smallest']:.2f}x | "
                    f"{_verdict(last['per_tile_vs_smallest'] <= PLANNING_RATIO_MAX)} |")
    if ground:
        low = min(ground["rows"], key=lambda r: r["ratio"])
        rows.append(f"| ground counting >= {GROUND_RATIO_MIN}x the raw forward at every "
                    f"thread setting | lowest {low['ratio']:.2f}x ({low['threads']} "
                    f"thread{'s' if low['threads'] > 1 else ''}, other core "
                    f"{'busy' if low['busy_core'] else 'idle'}) | "
                    f"{_verdict(low['ratio'] >= GROUND_RATIO_MIN)} |")
    if link:
        low = min(link, key=lambda r: r["ratio"])
        rows.append(f"| link goodput >= {LINK_RATIO_MIN}x the shaped rate | lowest "
                    f"{low['ratio']:.2f}x (tbf at {low['rate']}) | "
                    f"{_verdict(low['ratio'] >= LINK_RATIO_MIN)} |")
    return "\n".join(rows)


def machine_line(*results: dict | None) -> str:
    machines = sorted({r["machine"] for r in results if r})
    return "Measured on: " + "; ".join(machines) + "." if machines else "(no results)"


def tables(results: Path = RESULTS) -> dict[str, str]:
    onboard, planning = _load(results, "onboard"), _load(results, "planning")
    ground, link = _load(results, "ground"), _load(results, "link")
    memory = _load(results, "memory")
    out = {"perf-targets": targets_table(onboard, planning, ground, link, memory),
           "perf-machine": machine_line(onboard, planning, ground)}
    if onboard:
        out |= {"perf-onboard-time": onboard_time_table(onboard),
                "perf-onboard-split": onboard_split_table(onboard),
                "perf-memory": memory_table(onboard)}
    if planning:
        out["perf-planning"] = planning_table(planning)
    if ground:
        out["perf-ground"] = ground_table(ground)
    if link:
        out["perf-link"] = link_table(link)
    if memory:
        out["perf-memory-tiles"] = memory_tiles_table(memory)
    return out


def add_parser(sub: argparse._SubParsersAction) -> None:
    add_report_command(sub, "report-performance", "tables of docs/PERFORMANCE.md", DOC,
                       RESULTS, tables)
