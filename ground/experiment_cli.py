"""``targetfuse experiment``: run the pipeline sweeps and write CSV files and PNG plots."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace
from pathlib import Path

from ground import experiments as ex
from ground.eval_cli import (
    add_data_options,
    add_pipeline_options,
    parse_classes,
    pipeline_run,
    select_images,
)
from ground.evaluate import truth_objects

SWEEPS = ("tiles", "budget", "conf", "energy", "treatments", "dedup")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="pipeline sweeps: CSV and PNG plots")
    add_data_options(p)
    p.add_argument("--images", default=None, help="FILE:PART, e.g. a split's val part")
    p.add_argument("--sweeps", default=",".join(SWEEPS), help=f"comma-separated: {SWEEPS}")
    p.add_argument("--revisits", type=int, default=3, help="revisits per scene (dedup sweep)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="out/experiments")
    add_pipeline_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ground.counter import GroundCounter
    from onboard.counter import OnboardCounter
    from shared.formats import read_dataset

    sweeps = [s.strip() for s in args.sweeps.split(",") if s.strip()]
    unknown = set(sweeps) - set(SWEEPS)
    if unknown:
        raise ValueError(f"unknown sweeps {sorted(unknown)}; choose from {SWEEPS}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    classes = parse_classes(args.classes)
    images = select_images(read_dataset(args.data, args.fmt, gsd_m=args.gsd).images,
                           args.images)
    models_dir = Path(args.models_dir)
    gsds = {img.meta.gsd_m for img in images}
    pipe = pipeline_run(args, args.model, models_dir, gsds.pop() if len(gsds) == 1 else None)
    pipe.cfg = replace(pipe.cfg, seed=args.seed)
    onboard = OnboardCounter.shipped(args.model, models_dir, batch_size=8)
    ground = GroundCounter.shipped(args.model, models_dir, threads=1)
    truths = [len(truth_objects(img, classes, args.dedupe_iou)[0]) for img in images]
    w = ex.Workload(images, truths, onboard, ground, pipe)
    summary: dict = {"scenes": len(images), "policy": pipe.cfg.policy,
                     "tile_size": pipe.tiling.tile_size if pipe.tiling else None}
    if "tiles" in sweeps and pipe.tiling:
        rows = [{"tile_size": int(k), **v} for k, v in sorted(pipe.tiling.points.items(),
                                                               key=lambda kv: int(kv[0]))]
        ex.write_csv(out / "tiles.csv", rows)
        plot_tiles(rows, pipe.tiling, out / "tiles.png")
    if "budget" in sweeps:
        rows = ex.sweep_budget(w, 1.0) + ex.sweep_budget(w, 0.5)
        ex.write_csv(out / "budget.csv", rows)
        plot_budget(rows, out / "budget.png")
        summary["budget"] = budget_summary(rows, w)
    if "conf" in sweeps:
        rows = ex.sweep_conf(w)
        ex.write_csv(out / "conf.csv", rows)
        plot_conf(rows, out / "conf.png")
    if "energy" in sweeps:
        rows = ex.sweep_energy(w, pipe.budget_fraction)
        ex.write_csv(out / "energy.csv", rows)
        parts = ex.energy_breakdown(w, pipe.budget_fraction)
        ex.write_csv(out / "energy_per_scene.csv", parts)
        plot_energy(rows, parts, out / "energy.png")
    if "treatments" in sweeps:
        rows = ex.sweep_treatments(w)
        ex.write_csv(out / "treatments.csv", rows)
        summary["treatments"] = treatment_summary(rows)
    if "dedup" in sweeps:
        rows = dedup_workloads(images, truths, classes, onboard, ground, pipe, args)
        ex.write_csv(out / "dedup.csv", rows)
        plot_dedup(rows, out / "dedup.png")
        summary["dedup"] = rows
    old = out / "summary.json"
    if old.exists():  # a run of some sweeps keeps the others' figures
        summary = {**json.loads(old.read_text()), **summary}
    old.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    print(f"wrote {out}/")
    return 0


def budget_summary(rows: list[dict], w) -> dict:
    """The issue's target figures, read off the budget sweep."""
    def get(policy, b, e):
        return next(r for r in rows if r["policy"] == policy and
                    math.isclose(r["budget_fraction"], b) and r["energy_fraction"] == e)

    best = w.run.cfg.policy
    go = rows[0]["ground_only_cmae"]
    oo = get("onboard-only", 0.1, 1.0)["cmae"]
    out = {"ground_only_cmae": go, "onboard_only_cmae": oo, "policy": best}
    for b in (0.1, 0.25):
        c = get(best, b, 1.0)["cmae"]
        out[f"gap_closed_at_{b}"] = (oo - c) / (oo - go) if oo != go else float("nan")
        out[f"cmae_at_{b}"] = c
    scarce_oo = get("onboard-only", 0.1, 0.5)["cmae"]
    scarce = get(best, 0.1, 0.5)["cmae"]
    out.update({"scarce_onboard_only_cmae": scarce_oo, "scarce_collaborative_cmae": scarce,
                "scarce_ratio": scarce_oo / max(scarce, 1e-9)})
    budgets = sorted({r["budget_fraction"] for r in rows})
    out["value_vs_best_paper"] = {
        str(b): [get(best, b, 1.0)["cmae"],
                 min(get(p, b, 1.0)["cmae"] for p in ex.PAPER_POLICIES)] for b in budgets}
    eff = [r for r in rows if r["policy"] == best and r["energy_fraction"] == 1.0]
    top = max(eff, key=lambda r: r["efficiency"])
    out["max_efficiency"] = {"efficiency": top["efficiency"],
                             "budget_fraction": top["budget_fraction"],
                             "lower_bound": top["efficiency_is_lower_bound"]}
    return out


def treatment_summary(rows: list[dict]) -> dict:
    """Mean CMAE of each treatment over its runs (the same runs for both treatments)."""
    out: dict = {}
    for r in rows:
        out.setdefault(r["option"], {}).setdefault(r["treatment"], []).append(r["cmae"])
    return {o: {t: float(sum(v) / len(v)) for t, v in d.items()} for o, d in out.items()}


def dedup_workloads(images, truths, classes, onboard, ground, pipe, args) -> list[dict]:
    from shared.annotations import Footprint
    from shared.synth import SceneConfig, generate_revisits
    from shared.synth.revisit import revisit_real

    rows = []
    seqs, seq_truths = [], []
    for k, img in enumerate(images):
        gsd = img.meta.gsd_m or 1.0
        if img.meta.footprint is None:  # a local frame, as revisit_real assumes
            img = replace(img, meta=replace(img.meta, footprint=Footprint(
                (0.0, gsd, 0.0, 0.0, 0.0, -gsd))))
        revs = revisit_real(img, args.revisits, seed=args.seed + k)
        seqs.append([img, *revs])
        seq_truths.append([len(truth_objects(x, classes, args.dedupe_iou)[0])
                           for x in [img, *revs]])
    rows.append(ex.dedup_rows("real revisits", seqs, seq_truths, onboard, ground, pipe))
    gsd = images[0].meta.gsd_m or 0.5
    for sky, cover in (("clear", 0.0), ("15% cloud", 0.15)):
        synth, synth_truths = [], []
        for k in range(3):
            caps = generate_revisits(SceneConfig(width=2560, height=2560, gsd_m=gsd,
                                                 classes=("aircraft",), layout="airport",
                                                 cloud_cover=cover),
                                     seed=args.seed + 100 + k, n=args.revisits + 1,
                                     change_fraction=0.1)
            synth.append(caps)
            synth_truths.append([len(c.objects) for c in caps])
        rows.append(ex.dedup_rows(f"synthetic revisits, {sky}", synth, synth_truths, onboard,
                                  ground, pipe))
    rows.append(ex.dedup_rows("plain scenes", [[img] for img in images],
                              [[t] for t in truths], onboard, ground, pipe))
    return rows


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_tiles(rows, entry, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    s = [r["tile_size"] for r in rows]
    ax.plot(s, [r["relative_cmae"] for r in rows], "o-", ms=3,
            label="relative CMAE, mean of both counters")
    if "onboard_relative_cmae" in rows[0]:
        ax.plot(s, [r["onboard_relative_cmae"] for r in rows], ".:", ms=3,
                label="relative CMAE, onboard counter")
    ax.plot(s, [r["objective"] for r in rows], "s-", ms=3, label="objective J(s)")
    ax.axvline(entry.tile_size, color="k", ls="--", label=f"stored: {entry.tile_size}px")
    ax.set_xlabel("tile size (source px)")
    ax.set_ylabel("relative CMAE / objective")
    ax2 = ax.twinx()
    ax2.plot(s, [r["seconds_per_scene"] for r in rows], "^:", color="tab:red", ms=3)
    ax2.set_ylabel("onboard seconds per scene (1 thread)", color="tab:red")
    ax.legend(loc="upper center", fontsize=8)
    ax.set_title("Accuracy and time vs tile size")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_budget(rows, path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, e in zip(axes, (1.0, 0.5), strict=True):
        for policy in ex.POLICY_ORDER:
            pts = [r for r in rows if r["policy"] == policy and r["energy_fraction"] == e]
            ax.plot([r["budget_fraction"] for r in pts], [r["cmae"] for r in pts], "o-",
                    ms=3, label=policy)
        ax.axhline(rows[0]["ground_only_cmae"], color="k", ls="--", label="ground-only")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("downlink budget (fraction of raw tile bytes)")
        ax.set_title(f"energy fraction {e}")
    axes[0].set_ylabel("CMAE (objects per scene)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_conf(rows, path: Path) -> None:
    plt = _plt()
    budgets = sorted({r["budget_fraction"] for r in rows})
    fig, axes = plt.subplots(1, len(budgets), figsize=(4 * len(budgets), 4), sharey=True)
    for ax, b in zip(axes, budgets, strict=True):
        for policy in ex.PAPER_POLICIES:
            pts = [r for r in rows if r["policy"] == policy and r["budget_fraction"] == b]
            ax.plot([r["conf_p"] for r in pts], [r["cmae"] for r in pts], "o-", label=policy)
        ax.set_title(f"budget {b:.0%}")
        ax.set_xlabel("conf_p")
    axes[0].set_ylabel("CMAE")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_energy(rows, parts, path: Path) -> None:
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    for policy in sorted({r["policy"] for r in rows}):
        pts = [r for r in rows if r["policy"] == policy]
        a.plot([r["energy_fraction"] for r in pts], [r["cmae"] for r in pts], "o-",
               label=policy)
    a.set_xlabel("energy budget (fraction of counting every tile onboard)")
    a.set_ylabel("CMAE")
    a.legend(fontsize=8)
    bottom = [0.0] * len(parts)
    for k in ("capture", "compute", "aggregate", "downlink"):
        vals = [p[f"{k}_j_per_scene"] for p in parts]
        b.bar([p["policy"] for p in parts], vals, bottom=bottom, label=k)
        bottom = [x + y for x, y in zip(bottom, vals, strict=True)]
    b.set_ylabel("joules per scene")
    b.tick_params(axis="x", rotation=30)
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_dedup(rows, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in rows:
        ax.scatter(100 * r["skipped_fraction"], 100 * r["relative_cmae_change"], s=60)
        ax.annotate(r["workload"], (100 * r["skipped_fraction"],
                                    100 * r["relative_cmae_change"]), fontsize=8)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("onboard inferences skipped (%)")
    ax.set_ylabel("change in relative CMAE (points)")
    ax.set_title("Deduplication: savings vs error")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
