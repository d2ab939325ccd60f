"""``targetfuse eval``: count every image of a dataset with a shipped counter pair."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lab.evaluation.options import (
    add_data_options,
    add_pipeline_options,
    counter_classes,
    parse_classes,
    pipeline_run,
    select_images,
)
from shared.preprocess import unknown_gsd_warning


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


def run(args: argparse.Namespace) -> int:
    from ground.counter import GroundCounter
    from lab.data.formats import read_dataset
    from lab.evaluation.evaluate import PIPELINE_KEYS, evaluate
    from onboard.counter import OnboardCounter

    classes = parse_classes(args.classes)
    ds = read_dataset(args.data, args.fmt, gsd_m=args.gsd)
    unknown = classes - set(ds.class_names) - set(ds.class_counts())
    if unknown:
        raise ValueError(f"classes {sorted(unknown)} are not classes of {args.data} "
                         f"({sorted(set(ds.class_names) | set(ds.class_counts()))})")
    images = select_images(ds.images, args.images)
    models_dir = Path(args.models_dir)
    onboard = OnboardCounter.shipped(args.model, models_dir, threads=args.threads)
    no_gsd = [img.image_id for img in images if not img.meta.gsd_m]
    if no_gsd:
        print(f"targetfuse eval: warning: {len(no_gsd)} of {len(images)} images: "
              f"{unknown_gsd_warning(onboard.card.model_gsd_m)}", file=sys.stderr)
    ground = GroundCounter.shipped(args.model, models_dir, precision=args.precision,
                                   threads=args.threads,
                                   tta=None if args.tta is None else args.tta == "on")
    gsds = {img.meta.gsd_m for img in images}
    pipe = None if args.no_pipeline else pipeline_run(
        args, args.model, models_dir, gsds.pop() if len(gsds) == 1 else None)
    counted = counter_classes(onboard, classes)
    result = evaluate(images, classes, onboard, ground, dedupe_iou=args.dedupe_iou,
                      pipeline=pipe, counted=counted)
    result["dataset"] = {"data": args.data, "format": args.fmt, "classes": sorted(classes),
                         "images": len(images), "selection": args.images,
                         "dedupe_iou": args.dedupe_iou, "counted_classes": counted,
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
        for key in PIPELINE_KEYS:
            print(f"  {key:17s} CMAE {result['cmae'][key]:8.3f}  relative "
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
