"""``targetfuse report-exploration``: the tables of exploration's cost in ``docs/PIPELINE.md``.

Each exploration sweep (``targetfuse experiment --sweeps exploration --out
docs/exploration/NAME``) leaves a ``summary.json`` whose ``exploration`` part holds, per share,
the mean CMAE over its seeds, the change against no exploration at the same seeds (with its
standard error), the bytes used and how much of them went to exploration. This renders each
between ``<!-- exploration-NAME:begin/end -->`` markers; ``--check`` fails when the document
differs from the results (a test runs it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lab.evaluation.report import add_report_command
from shared.paths import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "PIPELINE.md"
RESULTS = PROJECT_ROOT / "docs" / "exploration"


def sweeps(results: Path = RESULTS) -> dict[str, dict]:
    """Sweep name -> its summary, for every folder whose summary holds an exploration part."""
    out = {}
    for path in sorted(Path(results).glob("*/summary.json")):
        summary = json.loads(path.read_text())
        if "exploration" in summary:
            out[path.parent.name] = summary
    return out


def exploration_table(summary: dict) -> str:
    e = summary["exploration"]
    rows = [f"{e['scenes']} scenes of `{summary['reported_on']['images']}`, "
            f"{e['seeds']} seeds, downlink budget {e['budget_fraction']:.0%} of raw bytes, "
            f"energy {e['energy_fraction']:g}; policy `{summary['policy']}`, uncounted tiles "
            f"`{summary['uncounted']}`:", "",
            "| exploration share | CMAE | change against 0 (± s.e.) | bytes used | "
            "of which exploration | exploration tiles a scene |",
            "|---|---|---|---|---|---|"]
    for s in e["shares"]:
        change = "" if s["exploration_share"] == 0 else (
            f"{s['cmae_change']:+.3f}" + ("" if s["cmae_change_stderr"] is None
                                          else f" ± {s['cmae_change_stderr']:.3f}"))
        rows.append(f"| {s['exploration_share']:g} | {s['cmae']:.3f} | {change} | "
                    f"{s['bytes_used'] / 1e6:.3f} MB | {s['exploration_bytes_share']:.1%} | "
                    f"{s['exploration_tiles_per_scene']:.2f} |")
    return "\n".join(rows)


def tables(results: Path = RESULTS) -> dict[str, str]:
    return {f"exploration-{name}": exploration_table(s) for name, s in sweeps(results).items()}


def add_parser(sub: argparse._SubParsersAction) -> None:
    add_report_command(sub, "report-exploration", "tables of exploration's cost in "
                       "docs/PIPELINE.md", DOC, RESULTS, tables)
