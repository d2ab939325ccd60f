"""``targetfuse report-shift``: the shift experiment's tables in ``docs/CLOSED_LOOP.md`` and
its plot, from the result files ``targetfuse shift-experiment`` writes (``docs/shift/
<source>.json``).

The tables sit between ``<!-- NAME:begin/end -->`` markers (``lab.evaluation.report``'s
rendering, as every ``report-*`` command); ``--check`` fails when the document differs from
what the results give (a test runs it), so no figure in it is typed by hand. Without
``--check`` the plot (``shift.png`` beside the results) is drawn again too.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lab.closed_loop.candidate import refused_by
from lab.evaluation.report import update_document
from shared.paths import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "CLOSED_LOOP.md"
RESULTS = PROJECT_ROOT / "docs" / "shift"
PLOT = "shift.png"


def results(folder: Path = RESULTS) -> dict[str, dict]:
    """Source -> its result file, for every ``<source>.json`` holding passes."""
    out = {}
    for path in sorted(Path(folder).glob("*.json")):
        data = json.loads(path.read_text())
        if data.get("passes"):
            out[data["source"]] = data
    return out


def _f(v, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _kb(v) -> str:
    return f"{v / 1000:.1f}"


def _verdict(s: dict) -> str:
    if s["target_met"] is None:
        return "not applicable (starting ECE <= 0.05)"
    return "**met**" if s["target_met"] else "not met"


def summary_table(runs: dict[str, dict]) -> str:
    rows = ["| left-out source | test scenes | passes | starting ECE | ECE with the loop | "
            "AUROC start -> with the loop | CMAE without the loop | CMAE with it | change | "
            "target (-20 %) | downlink kB a pass with / without | bundles | uplink kB | "
            "exploration kB | exploration tiles |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for source, r in runs.items():
        s, first = r["summary"], r["passes"][0]
        last = r["passes"][-s["converged_passes"]:]
        used = [sum(p[k] for p in last) / len(last)
                for k in ("loop_bytes_used", "no_loop_bytes_used")]
        rows.append(
            f"| {source} | {first['scenes']} | {s['passes']} (last {s['converged_passes']} "
            f"averaged) | {_f(first['no_loop_ece'])} | {_f(s['loop_ece'])} | "
            f"{_f(first['no_loop_auroc'])} -> {_f(s['loop_auroc'])} | "
            f"{_f(s['no_loop_cmae'])} | {_f(s['loop_cmae'])} | "
            f"{-100 * s['reduction']:+.1f} % | {_verdict(s)} | {_kb(used[0])} / "
            f"{_kb(used[1])} | {_bundles(s)} | "
            f"{_kb(s['uplink_bytes'])} | {_kb(s['exploration_bytes'])} | "
            f"{s['evidence_tiles']} |")
    return "\n".join(rows)


def _bundles(s: dict) -> str:
    """Recalibration bundles, and the adapted counters sent (``--adapt-every``)."""
    counters = s.get("adapted_counters") or 0
    return f"{s['bundles']}" + (f" + {counters} counter{'s' * (counters > 1)}"
                                if counters else "")


def passes_table(runs: dict[str, dict]) -> str:
    rows = ["| source | pass | bundle in force | CMAE with the loop | CMAE without | "
            "budget kB with / without | used kB with / without | exploration kB (tiles) | "
            "uplink kB charged | ECE with / without | AUROC with / without | AUROC on tiles "
            "with objects, with / without | recalibration after the pass |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for source, r in runs.items():
        for p in shown(r["passes"]):
            taken = " + ".join(name for name, key in (("confidence", "confidence_taken"),
                                                      ("error model", "error_model_taken"))
                               if p[key]) or "back to the starting calibration"
            after = (f"bundle {p['bundle_version'] + 1}: {taken} "
                     f"({p['evidence_tiles']} tiles)") if p["recalibrated"] else _reason(p)
            rows.append(
                f"| {source} | {p['pass']} | {p['bundle_version']} | {_f(p['loop_cmae'])} | "
                f"{_f(p['no_loop_cmae'])} | {_kb(p['loop_budget_bytes'])} / "
                f"{_kb(p['no_loop_budget_bytes'])} | {_kb(p['loop_bytes_used'])} / "
                f"{_kb(p['no_loop_bytes_used'])} | {_kb(p['exploration_bytes'])} "
                f"({p['exploration_tiles']}) | {_kb(p['uplink_bytes_charged'])} | "
                f"{_f(p['loop_ece'])} / {_f(p['no_loop_ece'])} | {_f(p['loop_auroc'])} / "
                f"{_f(p['no_loop_auroc'])} | {_f(p['loop_auroc_busy'])} / "
                f"{_f(p['no_loop_auroc_busy'])} | {after} |")
    return "\n".join(rows)


def adaptation_table(runs: dict[str, dict]) -> str:
    """Each adaptation the ground made (``--adapt-every``): its evidence, its check on
    held-back exploration tiles (against the reference of the version that ran it), the
    throttle replayed on the held-back images with each counter under its calibration
    (``lab.closed_loop.candidate``; "-" in runs made before that check), and the bundle when
    taken ("" when the runs made none)."""
    rows = ["| left-out source | after pass | tiles fit on | held-back exploration tiles | "
            "MAE against the check's reference, in force -> adapted | bias, in force -> adapted | "
            "tiles closer / farther | replayed error, in force -> adapted (ECE) | taken | "
            "bundle kB |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for source, r in runs.items():
        for p in r["passes"]:
            a = p.get("adaptation")
            if not a:
                continue
            c = a["checks"].get("counter")
            figures = "- | - | -" if c is None else (
                f"{_f(c['mae_before'])} -> {_f(c['mae_after'])} | "
                f"{c['bias_before']:+.3f} -> {c['bias_after']:+.3f} | "
                f"{100 * c['closer_share']:.0f} % / {100 * c['farther_share']:.0f} %")
            d = a["checks"].get("decisions")
            replay = "-" if d is None else (
                f"{_f(d['replayed_before'], 1)} -> {_f(d['replayed_after'], 1)} "
                f"({_f(d['ece_before'])} -> {_f(d['ece_after'])})"
                + (f", {d['scenes_better']} of {d['held_back_scenes']} scenes better, "
                   f"support {100 * d['gain_support']:.0f} %" if "gain_support" in d else ""))
            # The replay runs only on a counter that passed the first check.
            taken = "yes" if p.get("counter_adapted") else \
                ("no: not enough evidence" if c is None else
                 REFUSALS[refused_by(d)] if d is not None else "no")
            rows.append(f"| {source} | {p['pass']} | {a['fit_tiles']} | "
                        f"{a['held_back_tiles']} | {figures} | {replay} | {taken} | "
                        f"{_kb(p['uplink_bytes_sent']) if p.get('counter_adapted') else '-'} |")
    return "\n".join(rows) if len(rows) > 2 else ""


REFUSALS = {"replay": "no: chose no better", "support": "no: gain not supported",
            "calibration": "no: calibrated worse", None: "no"}


def shown(passes: list[dict], every: int = 5) -> list[dict]:
    """The passes the table lists: all of a short run; of a long one the first three, every
    ``every``-th, the first under each of the first three bundles, and the last (the result
    files hold every pass)."""
    if len(passes) <= 10:
        return passes
    firsts = {}
    for p in passes:
        firsts.setdefault(p["bundle_version"], p["pass"])
    keep = {p["pass"] for p in passes if p["pass"] <= 3 or p["pass"] % every == 0} | \
        {passes[-1]["pass"]} | {firsts[v] for v in sorted(firsts)[:4]}
    return [p for p in passes if p["pass"] in keep]


def _reason(p: dict) -> str:
    why = p["recalibration_reason"]
    if why == "last pass":
        return "none (last pass)"
    if why.startswith("not enough"):
        return f"none: not enough evidence ({p['evidence_tiles']} tiles, " \
               f"{p['evidence_wrong']} wrong)"
    return f"none: {why}"


def commands(runs: dict[str, dict]) -> str:
    lines = sorted({r["command"] for r in runs.values()})
    return "```sh\n" + "\n".join(f".venv/bin/{c}" for c in lines) + \
        "\n.venv/bin/targetfuse report-shift\n```"


def settings_line(runs: dict[str, dict]) -> str:
    s = next(iter(runs.values()))["settings"]
    return (f"Settings: {s['passes']} passes, exploration share {s['share']}, downlink budget "
            f"{s['budget']} of each scene's raw bytes, energy unlimited, the ground's minimum "
            f"sample {s['min_tiles']} downlinked tiles with {s['min_each']} exploration "
            f"tiles and {s['min_each']} right and wrong on each side of a {s['held_back']} "
            f"held-back split (per regime for its map), seed {s['seed']}; the "
            f"onboard counter in fp32.")


def variants(folder: Path = RESULTS) -> dict[str, dict[str, dict]]:
    """Variant name -> its runs: each sub-folder of the results holding result files (a
    variant of the experiment, e.g. ``map-identity``)."""
    return {d.name: results(d) for d in sorted(Path(folder).iterdir())
            if d.is_dir() and results(d)} if Path(folder).is_dir() else {}


def tables(folder: Path = RESULTS) -> dict[str, str]:
    runs = results(folder)
    if not runs:
        return {}
    more = variants(folder)
    every = {**{f"{k}": r for k, r in runs.items()},
             **{f"{v}/{k}": r for v, rs in more.items() for k, r in rs.items()}}
    out = {"shift-settings": settings_line(runs), "shift-summary": summary_table(runs),
           "shift-passes": passes_table(runs), "shift-commands": commands(every)}
    for name, rs in more.items():
        out[f"shift-summary-{name}"] = summary_table(rs)
        adapted = adaptation_table(rs)
        if adapted:
            out[f"shift-adaptation-{name}"] = adapted
    return out


def plots(folder: Path = RESULTS) -> list[Path]:
    """The results' plot, and each variant's in its sub-folder."""
    out = [plot(folder), *(plot(Path(folder) / v) for v in variants(folder))]
    return [p for p in out if p is not None]


def plot(folder: Path = RESULTS) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    runs = results(folder)
    if not runs:
        return None
    fig, axes = plt.subplots(3, len(runs), figsize=(4.2 * len(runs), 8.4), squeeze=False)
    for col, (source, r) in enumerate(runs.items()):
        x = [p["pass"] for p in r["passes"]]
        top, mid, bottom = axes[0][col], axes[1][col], axes[2][col]
        top.plot(x, [p["loop_cmae"] for p in r["passes"]], "o-", ms=3, label="with the loop")
        top.plot(x, [p["no_loop_cmae"] for p in r["passes"]], "s--", ms=3,
                 label="without (equal bytes)")
        top.set_title(source)
        top.set_ylabel("CMAE (objects per scene)")
        mid.plot(x, [p["loop_ece"] for p in r["passes"]], "o-", ms=3, label="with the loop")
        mid.plot(x, [p["no_loop_ece"] for p in r["passes"]], "s--", ms=3, label="without")
        mid.axhline(0.05, color="grey", lw=0.8, ls=":")
        mid.set_ylabel("confidence ECE")
        bottom.plot(x, [p["loop_bytes_used"] / 1e3 for p in r["passes"]], "o-", ms=3,
                    label="downlink used, with the loop")
        bottom.plot(x, [p["no_loop_bytes_used"] / 1e3 for p in r["passes"]], "s--", ms=3,
                    label="without")
        bottom.plot(x, [p["no_loop_budget_bytes"] / 1e3 for p in r["passes"]], ":",
                    color="grey", label="budget (without; with: less the uplink)")
        bottom.set_ylim(bottom=0)
        bottom.set_xlabel("pass")
        bottom.set_ylabel("kB a pass")
        first = next((p["pass"] for p in r["passes"] if p["bundle_version"]), None)
        for ax in (top, mid, bottom):
            ax.grid(alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if first is not None:
                ax.axvline(first, color="green", lw=0.8, ls="-.",
                           label="first pass under a bundle" if ax is top else None)
        if col == 0:
            for ax in (top, mid, bottom):
                ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(folder) / PLOT
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report-shift",
                       help="regenerate (or check) the shift experiment's tables and plot")
    p.add_argument("--doc", default=str(DOC))
    p.add_argument("--results", default=str(RESULTS))
    p.add_argument("--check", action="store_true", help="fail when the document is stale")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    folder = Path(args.results)
    if not args.check:
        for path in plots(folder):
            print(f"wrote {path}")
    return update_document(Path(args.doc), tables(folder), args.check, "report-shift")
