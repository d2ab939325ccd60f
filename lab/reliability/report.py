"""``targetfuse report-reliability``: the figures of ``docs/RELIABILITY.md``, from the suite.

``targetfuse faults`` leaves ``docs/reliability/faults.json`` and ``targetfuse faults
--segment`` ``docs/reliability/segment_faults.json``; this renders, between
``<!-- NAME:begin/end -->`` markers, each suite's totals, one row per fault scenario and one
per bad input. ``--check`` fails when the document differs from what the results give (a
test runs it), so no figure in it is typed by hand.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lab.evaluation.report import add_report_command
from lab.reliability.faults import RESULTS
from lab.reliability.segment_faults import SEGMENT_RESULTS
from shared.paths import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "RELIABILITY.md"


def totals_table(r: dict) -> str:
    t = r["totals"]
    s = r["scene"]
    return "\n".join([
        f"{t['runs']} runs on one scene ({s['pixels']}, the `{s['model']}` pair, link "
        f"{s['link_rate_bytes_s'] / 1000:g} kB/s), and {t['bad_inputs']} bad inputs:",
        "",
        "| tiles lost | tiles counted twice | scenes stuck | left behind | 5xx answers | "
        "bad inputs answered with a clear 4xx / REJECTED |",
        "|---|---|---|---|---|---|",
        f"| {t['lost']} | {t['counted_twice']} | {t['stuck']} | {t['left_behind']} | "
        f"{t['server_errors']} | {t['bad_inputs_clear_4xx']} of {t['bad_inputs']} |"])


def fault_table(r: dict, more: list[str], cells) -> str:
    """One row per run: what every run measures, then the ``more`` columns (``cells`` of
    a run), then its seconds."""
    heads = ["fault", "when", "tiles sent / received", "lost", "twice", "stuck", *more,
             "seconds"]
    rows = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for s in r["scenarios"]:
        cols = [s["scenario"], s["when"], f"{s['tiles_downlinked']} / {s['tiles_received']}",
                s["lost"], s["counted_twice"], s["stuck"], *cells(s), f"{s['seconds']:.0f}"]
        rows.append("| " + " | ".join(str(c) for c in cols) + " |")
    return "\n".join(rows)


def yes(flag: bool) -> str:
    return "yes" if flag else "no"


def scenarios_table(r: dict) -> str:
    return fault_table(r, ["left behind (files, chunks, outbox bytes)", "total = reference",
                           "connections cut", "parts resent after confirmation"],
                       lambda s: [", ".join(str(v) for v in s["left_behind"].values()),
                                  yes(s["total_matches_reference"]), s["relay_cuts"],
                                  s["parts_resent"]])


def bad_inputs_table(r: dict) -> str:
    b = r["bad_inputs"]
    rows = ["| interface | input | answer | clear |", "|---|---|---|---|"]
    rows += [f"| {c['interface']} | {c['input']} | {c['status']} | "
             f"{'yes' if c['clear_4xx'] else 'no'} |" for c in b["cases"]]
    after = {"good_scene_accepted": "a good scene is accepted after them",
             "ground_still_counting": "the ground's counting worker is still counting",
             "ground_lists_scenes": "the ground still lists its scenes",
             "forged_scene_kept_its_owner": "the scene a forged part aimed at keeps its "
                                            "owner",
             "ground_routes_answer": "every scene's every ground route answers without a "
                                     "5xx",
             "queue_empty_after": "the queue is empty",
             "squatted_id_held_nothing_back": "a scene whose first tile's id was taken "
                                              "on the queue beforehand is counted at once"}
    rows += ["", "After them: " + "; ".join(
        f"{text}: {'yes' if b[k] else 'no'}" for k, text in after.items() if k in b) +
        f"; inputs left behind: {b['left_behind']}."]
    if "squatted_scene" in b:
        q = b["squatted_scene"]
        rows[-1] += (f" The squatted scene: {q['tiles_counted']} of {q['tiles_received']} "
                     f"tiles counted, the longest {q['longest_count_wait_s']:g} s after its "
                     "commit.")
    return "\n".join(rows)


def segment_totals_table(r: dict) -> str:
    t, s = r["totals"], r["segment"]
    return "\n".join([
        f"{t['runs']} runs on the same scene, its ground {s['stations']} station and "
        f"{s['workers']} counting workers on {s['store']} and {s['queue']} (ack wait "
        f"{s['ack_wait_s']:g} s, a tile quarantined after {s['max_deliver']} tries):",
        "",
        "| tiles lost | tiles counted twice | scenes stuck | left behind (files, chunks, "
        "outbox bytes, queue) | 5xx answers | tiles whose count differs from the fault-free "
        "run's | good tiles quarantined |",
        "|---|---|---|---|---|---|---|",
        f"| {t['lost']} | {t['counted_twice']} | {t['stuck']} | {t['left_behind']} | "
        f"{t['server_errors']} | {t['counts_differing']} | {t['innocent_quarantined']} |",
        "", f"and {t['bad_inputs']} bad inputs against it (onboard uploads, link parts, queue "
        f"messages): {t['bad_inputs_clear_4xx']} answered with a clear 4xx, REJECTED or "
        f"taken off the queue; {t['bad_inputs_left_behind']} left behind, "
        f"{t['bad_inputs_server_errors']} 5xx."])


def segment_scenarios_table(r: dict) -> str:
    def quarantined(s: dict) -> str:
        q = ", ".join(f"tile {i}" for i in s["quarantined"]) or "none"
        return q + (f" ({s['poison_tries']} tries)" if s["poisoned"] else "")
    return fault_table(r, ["counts = reference", "quarantined (poison tile's tries)",
                           "redeliveries", "left in queue"],
                       lambda s: [yes(s["counts_match_reference"]), quarantined(s),
                                  s["redeliveries"], s["left_in_queue"]])


def tables(results: Path = RESULTS) -> dict[str, str]:
    """The embedded suite's tables from ``results``, and the segment's from the
    ``segment_faults.json`` beside it (each suite is run, and committed, on its own)."""
    r = json.loads(Path(results).read_text())
    segment = json.loads(Path(results).with_name(SEGMENT_RESULTS.name).read_text())
    return {"reliability-totals": totals_table(r), "reliability-faults": scenarios_table(r),
            "reliability-bad-inputs": bad_inputs_table(r),
            "reliability-segment-totals": segment_totals_table(segment),
            "reliability-segment-faults": segment_scenarios_table(segment),
            "reliability-segment-bad-inputs": bad_inputs_table(segment)}


def add_parser(sub: argparse._SubParsersAction) -> None:
    add_report_command(sub, "report-reliability", "figures of docs/RELIABILITY.md", DOC,
                       RESULTS, tables)
