"""``targetfuse report-reliability``: the figures of ``docs/RELIABILITY.md``, from the suite.

``targetfuse faults`` leaves ``docs/reliability/faults.json``; this renders, between
``<!-- NAME:begin/end -->`` markers, the suite's totals, one row per fault scenario and one
per bad input. ``--check`` fails when the document differs from what the results give (a
test runs it), so no figure in it is typed by hand.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lab.evaluation.report import add_report_command
from lab.faults import RESULTS
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


def scenarios_table(r: dict) -> str:
    rows = ["| fault | when | tiles sent / received | lost | twice | stuck | left behind "
            "(files, chunks, outbox bytes) | total = reference | connections cut | parts resent "
            "after confirmation | seconds |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in r["scenarios"]:
        left = s["left_behind"]
        rows.append(f"| {s['scenario']} | {s['when']} | {s['tiles_downlinked']} / "
                    f"{s['tiles_received']} | {s['lost']} | {s['counted_twice']} | "
                    f"{s['stuck']} | {left['files']}, {left['chunks']}, "
                    f"{left['outbox_bytes']} | {'yes' if s['total_matches_reference'] else 'no'}"
                    f" | {s['relay_cuts']} | {s['parts_resent']} | {s['seconds']:.0f} |")
    return "\n".join(rows)


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
                                     "5xx"}
    rows += ["", "After them: " + "; ".join(
        f"{text}: {'yes' if b[k] else 'no'}" for k, text in after.items() if k in b) +
        f"; inputs left behind: {b['left_behind']}."]
    return "\n".join(rows)


def tables(results: Path = RESULTS) -> dict[str, str]:
    r = json.loads(Path(results).read_text())
    return {"reliability-totals": totals_table(r), "reliability-faults": scenarios_table(r),
            "reliability-bad-inputs": bad_inputs_table(r)}


def add_parser(sub: argparse._SubParsersAction) -> None:
    add_report_command(sub, "report-reliability", "figures of docs/RELIABILITY.md", DOC,
                       RESULTS, tables)
