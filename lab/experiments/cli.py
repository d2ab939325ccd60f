"""``targetfuse experiment``: run the pipeline sweeps and write CSV files and PNG plots."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from lab.evaluation.evaluate import truth_objects
from lab.evaluation.options import (
    add_data_options,
    add_pipeline_options,
    counter_classes,
    parse_classes,
    pipeline_run,
    select_images,
)
from lab.experiments import sweeps as ex
from lab.experiments import tune
from lab.experiments.exploration_cost import (
    exploration_summary,
    parse_shares,
    sweep_exploration,
)
from lab.experiments.plots import plot_budget, plot_conf, plot_dedup, plot_energy, plot_tiles
from lab.experiments.summaries import (
    budget_summary,
    compute_cost_summary,
    treatment_summary,
)
from lab.experiments.workloads import dedup_workloads
from shared.model_bundle import ERROR_MODEL_FILE

DEFAULT_SWEEPS = ("tiles", "budget", "conf", "energy", "compute-cost", "treatments", "dedup")
# Run only when named: what exploration costs (lab.experiments.exploration_cost).
SWEEPS = (*DEFAULT_SWEEPS, "exploration")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="pipeline sweeps: CSV and PNG plots")
    add_data_options(p)
    p.add_argument("--images", default=None,
                   help="FILE:PART the figures are reported on, e.g. a split's test part")
    p.add_argument("--tune-images", default=None,
                   help="FILE:PART the pipeline's choices are made on (policy, treatment of "
                        "uncounted tiles), e.g. the split's val part; without it the "
                        "defaults stand and the summary says so")
    p.add_argument("--sweeps", default=",".join(DEFAULT_SWEEPS),
                   help=f"comma-separated: {SWEEPS} (default all but exploration)")
    p.add_argument("--budgets", default=None,
                   help="budget sweep's downlink budgets, comma-separated fractions "
                        f"(default {','.join(f'{b:g}' for b in ex.BUDGETS)})")
    p.add_argument("--revisits", type=int, default=3, help="revisits per scene (dedup sweep)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--exploration-shares", default=None,
                   help="exploration sweep: shares of each scene's bytes, comma-separated "
                        "(default 0,0.02,0.05; 0 is always played)")
    p.add_argument("--exploration-seeds", type=int, default=5,
                   help="exploration sweep: seeds each share is played at")
    p.add_argument("--out", default="out/experiments")
    add_pipeline_options(p)
    p.set_defaults(func=run)


def _part(spec: str | None) -> str:
    return spec.rpartition(":")[2] if spec else "all images"


def _workload(args, images, pipe, onboard, ground) -> ex.Workload:
    classes = parse_classes(args.classes)
    truths = [len(truth_objects(img, classes, args.dedupe_iou)[0]) for img in images]
    return ex.Workload(images, truths, onboard, ground, pipe,
                       classes=counter_classes(onboard, classes))


def _budgets(text: str | None) -> tuple[float, ...]:
    if not text:
        return ex.BUDGETS
    try:
        values = tuple(sorted({float(v) for v in text.split(",") if v.strip()}))
    except ValueError:
        raise ValueError(f"--budgets wants comma-separated fractions, got {text!r}") from None
    if not values or not all(0 < v <= 1 for v in values):
        raise ValueError(f"--budgets must be fractions in (0, 1], got {text!r}")
    return values


def _fixed(args: argparse.Namespace) -> set[str]:
    """The settings the command line fixed: tuning leaves them alone."""
    fixed = {k for k in ("policy", "uncounted") if getattr(args, k) is not None}
    return fixed | ({"adaptive_tiling"} if args.no_adaptive_tiling else set())


def run(args: argparse.Namespace) -> int:
    from ground.counter import GroundCounter
    from lab.data.formats import read_dataset
    from onboard.counter import OnboardCounter

    sweeps = [s.strip() for s in args.sweeps.split(",") if s.strip()]
    unknown = set(sweeps) - set(SWEEPS)
    if unknown:
        raise ValueError(f"unknown sweeps {sorted(unknown)}; choose from {SWEEPS}")
    shares = parse_shares(args.exploration_shares)
    if args.exploration_seeds < 1:
        raise ValueError(f"--exploration-seeds must be >= 1, got {args.exploration_seeds}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    dataset = read_dataset(args.data, args.fmt, gsd_m=args.gsd).images
    images = select_images(dataset, args.images)
    models_dir = Path(args.models_dir)
    gsds = {img.meta.gsd_m for img in images}
    pipe = pipeline_run(args, args.model, models_dir, gsds.pop() if len(gsds) == 1 else None)
    pipe.cfg = replace(pipe.cfg, seed=args.seed)
    onboard = OnboardCounter.shipped(args.model, models_dir, batch_size=8)
    ground = GroundCounter.shipped(args.model, models_dir, threads=1)
    tuned = None
    if args.tune_images:
        tuning = select_images(dataset, args.tune_images)
        tuned = tune.choose(_workload(args, tuning, pipe, onboard, ground), args.tune_images,
                            fixed=_fixed(args))
        pipe.cfg = replace(pipe.cfg, **tuned["choices"])
    # The configuration this run reports on, as the onboard service deploys it as is
    # (TARGETFUSE_ONBOARD_PIPELINE_FILE).
    pipe.cfg.save(out / "pipeline.json")
    w = _workload(args, images, pipe, onboard, ground)
    summary: dict = {
        "reported_on": {"images": args.images or "all images", "part": _part(args.images),
                        "scenes": len(w.sims), "mean_truth": float(w.truths.mean())
                        if len(w.truths) else 0.0},
        "tuned_on": tuned or {"images": None, "note": "defaults, not tuned by this run"},
        "model": args.model, "classes": counter_classes(onboard, parse_classes(args.classes)),
        "policy": pipe.cfg.policy, "uncounted": pipe.cfg.uncounted,
        "adaptive_tiling": pipe.cfg.adaptive_tiling,
        "tile_size": pipe.tiling.tile_size if pipe.tiling else None,
        "error_model": None if pipe.error_model is None else {
            "file": args.error_model or f"models/{args.model}/{ERROR_MODEL_FILE}",
            "fit_on": pipe.error_model.fit_on}}
    if "tiles" in sweeps and pipe.tiling:
        rows = [{"tile_size": int(k), **v} for k, v in sorted(pipe.tiling.points.items(),
                                                               key=lambda kv: int(kv[0]))]
        ex.write_csv(out / "tiles.csv", rows)
        plot_tiles(rows, pipe.tiling, out / "tiles.png")
    if "budget" in sweeps:
        budgets = _budgets(args.budgets)
        rows = ex.sweep_budget(w, 1.0, budgets) + ex.sweep_budget(w, 0.5, budgets)
        ex.write_csv(out / "budget.csv", rows)
        plot_budget(rows, out / "budget.png")
        summary["budget"] = budget_summary(rows, pipe.cfg.policy)
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
    if "compute-cost" in sweeps:
        rows = ex.sweep_compute_cost(w, pipe.budget_fraction)
        ex.write_csv(out / "compute_cost.csv", rows)
        summary["compute_cost"] = compute_cost_summary(rows, pipe.cfg.policy)
    if "treatments" in sweeps:
        rows = ex.sweep_treatments(w)
        ex.write_csv(out / "treatments.csv", rows)
        summary["treatments"] = treatment_summary(rows)
    if "exploration" in sweeps:
        rows = sweep_exploration(w, pipe.budget_fraction, pipe.energy_fraction, shares,
                                 args.exploration_seeds)
        ex.write_csv(out / "exploration.csv", rows)
        summary["exploration"] = exploration_summary(rows)
    if "dedup" in sweeps:
        rows = dedup_workloads(images, list(w.truths), parse_classes(args.classes), onboard,
                               ground, pipe, args)
        ex.write_csv(out / "dedup.csv", rows)
        plot_dedup(rows, out / "dedup.png")
        summary["dedup"] = rows
    # Written whole: a figure in it is always from this run.
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    print(f"wrote {out}/")
    return 0


