"""``targetfuse report-experiments``: the tables of ``docs/EXPERIMENTS.md``, from results.

Each experiment run (``targetfuse experiment --out docs/experiments/NAME``) leaves a
``summary.json``; this renders, between ``<!-- NAME:begin/end -->`` markers, what those
summaries say: which split chose the settings and which split reports, the targets against
the strongest member of each baseline family, and CMAE at every reported budget for the
collaborative run and every baseline. ``--check`` fails when the document differs from what
the results give (a test runs it), so no figure in it is typed by hand.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from lab.evaluation.report import add_report_command
from shared.paths import PROJECT_ROOT
from shared.pipeline.baselines import BASELINES

DOC = PROJECT_ROOT / "docs" / "EXPERIMENTS.md"
RESULTS = PROJECT_ROOT / "docs" / "experiments"


def _f(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def runs(results: Path = RESULTS) -> dict[str, dict]:
    """Experiment name -> its summary, for every run folder holding a budget sweep."""
    out = {}
    for path in sorted(results.glob("*/summary.json")):
        summary = json.loads(path.read_text())
        if "budget" in summary:
            out[path.parent.name] = summary
    return out


def _tiling(summary: dict) -> str:
    if summary.get("tile_size") is None:
        return "natural tiles (no calibrated size)"
    return f"{'on' if summary.get('adaptive_tiling') else 'off'} ({summary['tile_size']} px)"


def protocol_table(summaries: dict[str, dict]) -> str:
    rows = ["| experiment | classes | reported on | scenes | mean objects | settings chosen on | "
            "policy | uncounted tiles | adaptive tiling | error model fit on |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in summaries.items():
        rep, tuned = s["reported_on"], s["tuned_on"]
        em = (s.get("error_model") or {}).get("fit_on") or {}
        rows.append(
            f"| `{name}` | {', '.join(s.get('classes') or ['-'])} | {rep['images']} | "
            f"{rep['scenes']} | {_f(rep['mean_truth'], 1)} | "
            f"{tuned.get('images') or 'not tuned (defaults)'} | {s['policy']} | "
            f"{s['uncounted']} | {_tiling(s)} | "
            f"{em.get('part', 'train')} ({em.get('tiles', '?')} tiles) |")
    return "\n".join(rows)


def targets_table(summaries: dict[str, dict]) -> str:
    rows = ["| experiment | E 1.0, 10 %: collaborative / strongest onboard-only (<= 0.7) | "
            "E 0.5, 10 %: strongest onboard-only / collaborative (>= 3) | "
            "max bandwidth efficiency vs strongest vanilla (>= 10) | "
            "ground-only CMAE (raw / bias-corrected) |", "|---|---|---|---|---|"]
    for name, s in summaries.items():
        b = s["budget"]
        t = b.get("targets")
        eff = b.get("max_efficiency")
        if t is None:
            continue
        ample = f"{t['ample_ratio']:.2f} against {t['ample_against']} " \
                f"({'met' if t['ample_ratio'] <= t['ample_ratio_max'] else 'missed'})"
        scarce = f"{t['scarce_ratio']:.2f}x against {t['scarce_against']} " \
                 f"({'met' if t['scarce_ratio'] >= t['scarce_ratio_min'] else 'missed'})"
        if eff is not None and not math.isfinite(eff["efficiency"]):
            eff = None  # nothing went down at any budget: no efficiency to speak of
        effs = "-" if eff is None else (
            f"{'>= ' if eff['lower_bound'] else ''}{eff['efficiency']:.1f}x at "
            f"{100 * eff['budget_fraction']:g} % "
            f"({'met' if eff['efficiency'] >= t['efficiency_min'] else 'missed'})")
        rows.append(f"| `{name}` | {ample} | {scarce} | {effs} | "
                    f"{_f(b['ground_only_cmae'])} / {_f(b['ground_only_corrected_cmae'])} |")
    return "\n".join(rows)


def budget_table(name: str, summary: dict) -> str:
    points = summary["budget"]["points"]
    cols = [(p["energy_fraction"], p["budget_fraction"]) for p in points]
    head = "| CMAE | " + " | ".join(f"E {e:g}, {100 * b:g} %" for e, b in cols) + " |"
    rows = [head, "|---" * (len(cols) + 1) + "|"]
    rows.append(f"| collaborative ({summary['policy']}) | " +
                " | ".join(f"**{_f(p['collaborative'])}**" for p in points) + " |")
    for base in BASELINES:
        cells = []
        for p in points:
            v = _f(p["baselines"][base])
            strongest = base in p["strongest"].values()
            cells.append(f"{v} (strongest)" if strongest and not base.startswith("random")
                         else v)
        rows.append(f"| {base} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def compute_cost_table(summaries: dict[str, dict]) -> str:
    rows = ["| experiment | counting cost | J/FLOP | energy | collaborative CMAE | strongest "
            "onboard-only | ratio | strongest vanilla | ratio |",
            "|---|---|---|---|---|---|---|---|---|"]
    for name, s in summaries.items():
        for r in s.get("compute_cost", []):
            rows.append(
                f"| `{name}` | {r['compute_cost']} | {r['j_per_flop']:.2g} | "
                f"{r['energy_fraction']:g} | {_f(r['collaborative'])} | "
                f"{_f(r['onboard_only'])} ({r['onboard_only_variant']}) | "
                f"{_f(r['collaborative_over_onboard_only'])} | {_f(r['vanilla'])} "
                f"({r['vanilla_variant']}) | {_f(r['collaborative_over_vanilla'])} |")
    return "\n".join(rows)


def tables(results: Path = RESULTS) -> dict[str, str]:
    summaries = runs(results)
    if not summaries:
        return {}
    out = {"experiments-protocol": protocol_table(summaries),
           "experiments-targets": targets_table(summaries)}
    if any(s.get("compute_cost") for s in summaries.values()):
        out["experiments-compute-cost"] = compute_cost_table(summaries)
    for name, s in summaries.items():
        out[f"experiments-budget-{name}"] = budget_table(name, s)
    return out


def add_parser(sub: argparse._SubParsersAction) -> None:
    add_report_command(sub, "report-experiments", "tables of docs/EXPERIMENTS.md", DOC,
                       RESULTS, tables)
