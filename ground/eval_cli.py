"""``targetfuse eval``: count every image of a dataset with a shipped counter pair."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from shared.model_card import MODELS_DIR


def add_data_options(p: argparse.ArgumentParser) -> None:
    """The dataset and shipped pair that eval, calibrate and experiment all score."""
    p.add_argument("--data", required=True)
    p.add_argument("--format", required=True, dest="fmt")
    p.add_argument("--model", required=True, help="shipped pair by what it counts: aircraft")
    p.add_argument("--classes", required=True,
                   help="the dataset's annotation classes that count as truth, comma-separated")
    p.add_argument("--gsd", type=float, default=None, help="scene GSD when the data omit it")
    p.add_argument("--dedupe-iou", type=float, default=0.3,
                   help="merge truth labels whose boxes overlap above this IoU (0: off)")
    p.add_argument("--models-dir", default=str(MODELS_DIR))


def parse_classes(text: str) -> set[str]:
    return {c.strip() for c in text.split(",") if c.strip()}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score the shipped onboard/ground pair on a dataset")
    add_data_options(p)
    p.add_argument("--images", default=None,
                   help="a split JSON and part, FILE:PART (e.g. models/splits/x.json:test)")
    p.add_argument("--json", default=None, help="write the result here")
    p.add_argument("--precision", default=None, choices=["fp32", "bf16", "fp16"],
                   help="ground counter precision (default: the card's)")
    p.add_argument("--tta", default=None, choices=["on", "off"],
                   help="ground test-time augmentation (default: the card's)")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for each counter (timings are per this many)")
    add_pipeline_options(p)
    p.set_defaults(func=run)


def add_pipeline_options(p: argparse.ArgumentParser) -> None:
    from shared.pipeline.throttling import POLICIES

    g = p.add_argument_group("collaborative pipeline (scene-relative budgets)")
    g.add_argument("--budget-fraction", type=float, default=0.10,
                   help="downlink bytes as a fraction of the scene's raw encoded tile bytes")
    g.add_argument("--energy-fraction", type=float, default=1.0,
                   help="onboard energy as a fraction of what counting every tile costs")
    g.add_argument("--policy", default=None, choices=sorted(POLICIES),
                   help="throttling policy (default: value, the best measured)")
    g.add_argument("--conf-p", type=float, default=None, help="discard below (paper policies)")
    g.add_argument("--conf-q", type=float, default=None, help="accept above (paper policies)")
    g.add_argument("--no-dedup", action="store_true", help="turn deduplication off")
    g.add_argument("--no-adaptive-tiling", action="store_true",
                   help="use the counter's natural tile size, not the calibrated one")
    g.add_argument("--discarded", default=None, choices=["onboard", "zero"],
                   help="what a discarded tile adds to the total")
    g.add_argument("--uncounted", default=None, choices=["zero", "context"],
                   help="what a tile left uncounted (energy spent) adds to the total")
    g.add_argument("--no-pipeline", action="store_true",
                   help="score the two counters only (no pipeline, no baselines)")


def pipeline_run(args: argparse.Namespace, name: str, models_dir: Path, gsd: float | None):
    """The evaluate.PipelineRun the options describe, with the model's calibration files."""
    from dataclasses import replace

    from ground.evaluate import PipelineRun
    from shared.pipeline.scene import PipelineConfig
    from shared.pipeline.simulator import check_fraction
    from shared.pipeline.throttling import ErrorModel
    from shared.pipeline.tiling import load_table

    check_fraction("--budget-fraction", args.budget_fraction)
    check_fraction("--energy-fraction", args.energy_fraction)
    err_file = models_dir / name / "error_model.json"
    error_model = ErrorModel.load(err_file) if err_file.exists() else None
    table = load_table(name, models_dir)
    policy = args.policy or ("value" if error_model else "dynamic-conf")
    if policy == "value" and error_model is None:
        raise ValueError(f"the value policy needs {err_file} (run targetfuse calibrate)")
    cfg = PipelineConfig(policy=policy, dedup=not args.no_dedup,
                         adaptive_tiling=not args.no_adaptive_tiling)
    changes = {k: getattr(args, k) for k in ("conf_p", "conf_q", "discarded", "uncounted")
               if getattr(args, k) is not None}
    cfg = replace(cfg, **changes)
    return PipelineRun(cfg, args.budget_fraction, args.energy_fraction,
                       tiling=table.lookup(gsd) if table else None, error_model=error_model)


def select_images(images, spec: str | None):
    if not spec:
        return images
    file, sep, part = spec.rpartition(":")
    if not sep:
        raise ValueError(f"--images wants FILE:PART, got {spec!r}")
    parts = json.loads(Path(file).read_text())
    if part not in parts:
        raise ValueError(f"{file} has no part {part!r}; it has {sorted(parts)}")
    wanted = set(parts[part])
    chosen = [img for img in images if img.image_id in wanted]
    if len(chosen) != len(wanted):
        raise ValueError(f"{len(wanted) - len(chosen)} images of {spec} are not in the dataset")
    return chosen


def run(args: argparse.Namespace) -> int:
    from ground.counter import GroundCounter
    from ground.evaluate import evaluate
    from onboard.counter import OnboardCounter
    from shared.formats import read_dataset

    classes = parse_classes(args.classes)
    ds = read_dataset(args.data, args.fmt, gsd_m=args.gsd)
    unknown = classes - set(ds.class_names) - set(ds.class_counts())
    if unknown:
        raise ValueError(f"classes {sorted(unknown)} are not classes of {args.data} "
                         f"({sorted(set(ds.class_names) | set(ds.class_counts()))})")
    images = select_images(ds.images, args.images)
    models_dir = Path(args.models_dir)
    onboard = OnboardCounter.shipped(args.model, models_dir, threads=args.threads)
    ground = GroundCounter.shipped(args.model, models_dir, precision=args.precision,
                                   threads=args.threads,
                                   tta=None if args.tta is None else args.tta == "on")
    gsds = {img.meta.gsd_m for img in images}
    pipe = None if args.no_pipeline else pipeline_run(
        args, args.model, models_dir, gsds.pop() if len(gsds) == 1 else None)
    result = evaluate(images, classes, onboard, ground, dedupe_iou=args.dedupe_iou,
                      pipeline=pipe)
    result["dataset"] = {"data": args.data, "format": args.fmt, "classes": sorted(classes),
                         "images": len(images), "selection": args.images,
                         "dedupe_iou": args.dedupe_iou,
                         "duplicate_labels_removed": sum(r["duplicate_labels_removed"]
                                                         for r in result["images"])}
    result["models"] = {"name": args.model, "onboard": onboard.card.architecture,
                        "ground": ground.card.architecture, "precision": ground.precision,
                         "tta": ground.tta,
                        "threads": args.threads}
    print(f"{len(images)} images, mean true count "
          f"{sum(r['truth'] for r in result['images']) / max(len(images), 1):.1f} "
          f"({result['dataset']['duplicate_labels_removed']} duplicate labels merged)")
    for key in ("onboard_only", "ground_only"):
        print(f"  {key:13s} CMAE {result['cmae'][key]:8.3f}  relative "
              f"{result['relative_cmae'][key]:.3f}  tile MAE {result['tile_mae'][key]:.3f}  "
              f"Jaccard {result['jaccard'][key]:.3f}  {result['ms_per_tile'][key]:.1f} ms/tile")
    if pipe is not None:
        rows = result["images"]
        raw = sum(r["bytes_raw"] for r in rows)
        result["pipeline"] = {
            "policy": pipe.cfg.policy, "budget_fraction": pipe.budget_fraction,
            "energy_fraction": pipe.energy_fraction, "conf_p": pipe.cfg.conf_p,
            "conf_q": pipe.cfg.conf_q, "dedup": pipe.cfg.dedup,
            "adaptive_tiling": pipe.cfg.adaptive_tiling,
            "tile_size": pipe.tiling.tile_size if pipe.tiling else None,
            "bytes_raw": raw, "bytes_downlinked": sum(r["bytes_downlinked"] for r in rows),
            "onboard_inferences": sum(r["onboard_inferences"] for r in rows),
            "energy_j": round(sum(r["energy_j"] for r in rows), 3)}
        print(f"  pipeline: policy {pipe.cfg.policy}, downlink budget "
              f"{pipe.budget_fraction:.0%} of raw bytes, energy {pipe.energy_fraction:.0%}")
        for key in ("collaborative", "vanilla", "random"):
            print(f"  {key:13s} CMAE {result['cmae'][key]:8.3f}  relative "
                  f"{result['relative_cmae'][key]:.3f}")
        p = result["pipeline"]
        print(f"  downlinked {p['bytes_downlinked'] / 1e6:.2f} of {raw / 1e6:.2f} MB raw, "
              f"{p['onboard_inferences']} onboard inferences, {p['energy_j']:.2f} J")
    if "confidence" in result:
        c = result["confidence"]
        print(f"  confidence    AUROC {c['auroc']}  non-empty {c['auroc_nonempty']}  "
              f"ECE {c['ece']}  right {c['right_rate']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0
