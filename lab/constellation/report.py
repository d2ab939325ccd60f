"""``targetfuse report-constellation``: the figures of ``docs/CONSTELLATION.md``.

From the result files in ``docs/constellation/``: the simulated day (``day/summary.json``,
``targetfuse simulate-day``), the live run (``live.json``, ``targetfuse constellation-live``)
and the segment's counting throughput (``throughput.json``,
``benchmarks/segment_throughput.py``). Tables go between ``<!-- NAME:begin/end -->``
markers; ``--check`` fails when the document differs from what the results give (a test
runs it).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from lab.evaluation.report import add_report_command
from shared.paths import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "CONSTELLATION.md"
RESULTS = PROJECT_ROOT / "docs" / "constellation"


def live_table(r: dict) -> str:
    c, cfg = r["checks"], r["config"]
    rows = [f"{len(cfg['satellites'])} satellites ({', '.join(cfg['satellites'])}), "
            f"{len(cfg['stations'])} stations ({', '.join(cfg['stations'])}), "
            f"{cfg['workers']} workers; {c['scenes']} scenes of {cfg['scene_px']} x "
            f"{cfg['scene_px']} px, budget {cfg['budget_fraction']:g} of each scene's raw "
            f"tile bytes; {r['windows']} contact windows, {cfg['plan_hours']:g} h of orbit "
            f"compressed {cfg['factor']:g}x; {r['seconds']:.0f} s in all.", "",
            "| scenes complete | confirmed onboard | totals = single station | tiles planned "
            "| lost | counted twice | redeliveries | left in the queue |",
            "|---|---|---|---|---|---|---|---|",
            f"| {c['complete']} of {c['scenes']} | {c['delivered']} | "
            f"{c['totals_equal_single_station']} of {c['scenes']} | {c['tiles_planned']} | "
            f"{c['tiles_lost']} | {c['tiles_counted_twice']} | {c['redelivered']} | "
            f"{c['left_in_queue']} |", "",
            "| seconds | event |", "|---:|---|"]
    rows += [f"| {t:.1f} | {what} |" for t, what in r["events"]]
    rows += ["", "| station | bytes acknowledged |", "|---|---:|"]
    rows += [f"| {st} | {b:,} |" for st, b in sorted(r["bytes_by_station"].items())]
    rows += ["", "| scene | satellite | total | single station | tiles planned / received / "
             "counted |", "|---|---|---:|---:|---|"]
    rows += [f"| {s['scene_id']} | {s['satellite']} | {s['total']:.3f} | "
             f"{s['single_station_total']:.3f} | {s['tiles_planned']} / "
             f"{s['tiles_received']} / {s['tiles_counted']} |" for s in r["scenes"]]
    return "\n".join(rows)


def throughput_table(r: dict) -> str:
    base = r["rows"][0]["tiles_s"]
    rows = [f"`{r['command']}` ({r['cpus']} CPUs, the `{r['model']}` counter, one torch "
            "thread per worker):", "",
            "| workers | tiles | seconds | tiles/s | vs 1 worker | most tiles waiting |",
            "|---:|---:|---:|---:|---:|---:|"]
    rows += [f"| {x['workers']} | {x['tiles']} | {x['seconds']:.2f} | {x['tiles_s']:.2f} | "
             f"{x['tiles_s'] / base:.2f}x | "
             f"{max((q['pending'] for q in x['queue']), default=0)} |" for x in r["rows"]]
    return "\n".join(rows)


def projection(throughput: dict, live: dict, day: dict, day_tiles: int) -> str:
    """What N workers are needed for, from the measured figures: one worker's rate, the live
    run's mean tile size, the day's link peak and the bytes the day sent."""
    rate = throughput["rows"][0]["tiles_s"]
    tiles = sum(s["tiles_planned"] for s in live["scenes"])
    tile_bytes = sum(s["downlink_bytes"] for s in live["scenes"]) / tiles
    peak = day["config"]["max_rate_bytes_s"]
    at_peak = peak / tile_bytes
    first = next(iter(day["runs"].values()))
    span_s = (day["config"]["hours"] + day["config"]["drain_h"]) * 3600
    return (f"One worker counts {rate:.2f} tiles/s ({1 / rate:.3f} s a tile). The live run's "
            f"tiles average {tile_bytes / 1e3:.1f} kB, so a pass at the plan's peak of "
            f"{peak / 1e6:g} MB/s brings {at_peak:.0f} tiles/s, which "
            f"{-(-at_peak // rate):.0f} workers keep up with; the simulated day's "
            f"{day_tiles} tiles ({len(first['stations'])} stations) are "
            f"{day_tiles / rate:.0f} s of one worker's counting in "
            f"{span_s / 3600:g} h.")


def day_tables(s: dict, marker: str = "constellation-day") -> dict[str, str]:
    runs, c = s["runs"], s["config"]
    rows = [f"{c['satellites']} satellites, {c['captures']} airport captures of "
            f"{c['scene_px']} x {c['scene_px']} px in {c['hours']:g} h (then {c['drain_h']:g} h "
            f"of passes to finish), peak link rate {c['max_rate_bytes_s']:g} B/s, budget "
            f"{c['budget']:g}, throttle horizon {c['horizon_s'] / 3600:g} h, "
            + (f"{c['antennas']} antenna(s) a station" if c.get("antennas") else
               "every satellite in view served") +
            f", {c['workers']} worker(s) at {c['worker_rate']:g} tiles/s:", "",
            "| run | stations | scenes | complete within the day | CMAE | median latency "
            "(min) | p90 latency (min) | bytes sent | tiles resent |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in runs.items():
        rows.append(f"| {name} | {', '.join(r['stations'])} | {r['scenes']} | "
                    f"{r['complete_within_span']} | {r['cmae']:.2f} | "
                    f"{r['latency_median_s'] / 60:.1f} | {r['latency_p90_s'] / 60:.1f} | "
                    f"{r['bytes_sent']:,} | {r['resent_tiles']} |")
    st = ["| run | station | passes in the day | contact minutes | minutes served | "
          "capacity (MB) | bytes received (day and drain) |",
          "|---|---|---:|---:|---:|---:|---:|"]
    for name, r in runs.items():
        st += [f"| {name} | {x['station']} | {x['passes']} | {x['contact_minutes']:.1f} | "
               f"{x['served_minutes']:.1f} | {x['bytes_capacity'] / 1e6:.1f} | "
               f"{x['bytes_sent']:,} |"
               for x in r["station_table"]]
    return {marker: "\n".join(rows), f"{marker}-stations": "\n".join(st)}


def tables(results: Path = RESULTS) -> dict[str, str]:
    results = Path(results)
    out = {}
    for day in ("day", "day-constrained", "day-constrained-next-window", "day-one-antenna"):
        if (results / day / "summary.json").exists():
            out.update(day_tables(json.loads((results / day / "summary.json").read_text()),
                                  f"constellation-{day}"))
    if (results / "live.json").exists():
        out["constellation-live"] = live_table(json.loads((results / "live.json").read_text()))
    if (results / "throughput.json").exists():
        throughput = json.loads((results / "throughput.json").read_text())
        out["constellation-throughput"] = throughput_table(throughput)
        if (results / "live.json").exists() and (results / "day" / "summary.json").exists():
            day = json.loads((results / "day" / "summary.json").read_text())
            with (results / "day" / "scenes.csv").open() as f:
                first = next(iter(day["runs"]))
                tiles = sum(int(r["tiles"]) for r in csv.DictReader(f) if r["run"] == first)
            out["constellation-projection"] = projection(
                throughput, json.loads((results / "live.json").read_text()), day, tiles)
    return out


def add_parser(sub: argparse._SubParsersAction) -> None:
    add_report_command(sub, "report-constellation", "figures of docs/CONSTELLATION.md", DOC,
                       RESULTS, tables)
