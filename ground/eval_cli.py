"""``targetfuse eval``: count every image of a dataset with a shipped counter pair."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from shared.model_card import MODELS_DIR


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score the shipped onboard/ground pair on a dataset")
    p.add_argument("--data", required=True)
    p.add_argument("--format", required=True, dest="fmt")
    p.add_argument("--model", required=True, help="shipped pair by what it counts: aircraft")
    p.add_argument("--classes", required=True,
                   help="the dataset's annotation classes that count as truth, comma-separated")
    p.add_argument("--gsd", type=float, default=None, help="scene GSD when the data omit it")
    p.add_argument("--images", default=None,
                   help="a split JSON and part, FILE:PART (e.g. models/splits/x.json:test)")
    p.add_argument("--dedupe-iou", type=float, default=0.3,
                   help="merge truth labels whose boxes overlap above this IoU (0: off)")
    p.add_argument("--json", default=None, help="write the result here")
    p.add_argument("--models-dir", default=str(MODELS_DIR))
    p.add_argument("--precision", default=None, choices=["fp32", "bf16", "fp16"],
                   help="ground counter precision (default: the card's)")
    p.add_argument("--tta", default=None, choices=["on", "off"],
                   help="ground test-time augmentation (default: the card's)")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for each counter (timings are per this many)")
    p.set_defaults(func=run)


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

    classes = {c.strip() for c in args.classes.split(",") if c.strip()}
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
    result = evaluate(images, classes, onboard, ground, dedupe_iou=args.dedupe_iou)
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
    if "confidence" in result:
        c = result["confidence"]
        print(f"  confidence    AUROC {c['auroc']}  non-empty {c['auroc_nonempty']}  "
              f"ECE {c['ece']}  right {c['right_rate']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0
