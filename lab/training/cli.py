"""``targetfuse train``: train one counter (shallow or deep) and record the run for shipping.

The run folder gets ``run.json`` (what was trained on what), per-epoch checkpoints and the
history; ``targetfuse ship`` then turns its best checkpoint into shipped files.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

DEFAULT_ARCH = {"shallow": "shallow-mbv2", "deep": "deep-aspp"}
DEFAULT_LR = {"shallow": 3e-3, "deep": 1.5e-3}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the shallow (onboard) or deep (ground) counter")
    p.add_argument("--model", required=True, choices=["shallow", "deep"])
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--format", required=True, dest="fmt")
    p.add_argument("--classes", required=True,
                   help="annotation classes that count, comma-separated")
    p.add_argument("--name", default="aircraft", help="what the pair counts (models/NAME/)")
    p.add_argument("--arch", default=None, help="registry name (default per --model)")
    p.add_argument("--split", default=None,
                   help="JSON {train: [ids], val: [ids], ...}; default: a seeded split by group")
    p.add_argument("--gsd", type=float, default=None, help="scene GSD when the data omit it")
    p.add_argument("--model-gsd", type=float, default=1.0, help="GSD the counter works at")
    p.add_argument("--input-size", type=int, default=256)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--samples-per-epoch", type=int, default=1600)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--synthetic", type=int, default=0,
                   help="add this many synthetic scenes to the training set")
    p.add_argument("--synthetic-classes", default="aircraft",
                   help="synthetic classes that count as the target")
    p.add_argument("--synthetic-weight", type=float, default=0.5,
                   help="sampling weight of a synthetic scene relative to a real one")
    p.add_argument("--dedupe-iou", type=float, default=0.3,
                   help="merge labels whose boxes overlap above this IoU (0: off)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None, help="run folder (default out/train/NAME-MODEL)")
    p.add_argument("--no-resume", action="store_true")
    p.set_defaults(func=run)


def _split(args, images):
    from lab.data.splits import split_images

    if args.split:
        parts = json.loads(Path(args.split).read_text())
        by_id = {img.image_id: img for img in images}
        missing = [i for ids in parts.values() for i in ids if i not in by_id]
        if missing:
            raise ValueError(f"{args.split}: {len(missing)} ids not in {args.data}, e.g. "
                             f"{missing[0]!r}")
        return {k: [by_id[i] for i in ids] for k, ids in parts.items()}
    return split_images(images, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=args.seed)


def run(args: argparse.Namespace) -> int:
    from lab.training.data import load_scene
    from lab.training.loop import TrainConfig, train
    from shared.formats import read_dataset

    classes = {c.strip() for c in args.classes.split(",") if c.strip()}
    ds = read_dataset(args.data, args.fmt, gsd_m=args.gsd)
    unknown = classes - set(ds.class_counts())
    if unknown:
        raise ValueError(f"classes {sorted(unknown)} do not occur in {args.data}; it has "
                         f"{sorted(ds.class_counts())}")
    parts = _split(args, ds.images)
    if not parts.get("train") or not parts.get("val"):
        raise ValueError("the split needs non-empty 'train' and 'val' parts")
    gsd = args.model_gsd
    train_scenes = [load_scene(img, gsd, classes, dedupe_iou=args.dedupe_iou)
                    for img in tqdm(parts["train"], desc="train scenes", unit="scene")]
    val_scenes = [load_scene(img, gsd, classes, dedupe_iou=args.dedupe_iou)
                  for img in tqdm(parts["val"], desc="val scenes", unit="scene")]
    weights = [1.0] * len(train_scenes)
    if args.synthetic:
        from lab.synth import SceneConfig, generate_scene

        syn_classes = {c.strip() for c in args.synthetic_classes.split(",")}
        for k in tqdm(range(args.synthetic), desc="synthetic scenes", unit="scene"):
            layout = ("airport", "mixed", "harbour", "urban")[k % 4]
            cfg = SceneConfig(width=1024, height=1024, gsd_m=gsd, layout=layout)
            img = generate_scene(cfg, seed=args.seed * 1000 + k, image_id=f"synth{k}")
            train_scenes.append(load_scene(img, gsd, syn_classes))
            weights.append(args.synthetic_weight)
    cfg = TrainConfig(arch=args.arch or DEFAULT_ARCH[args.model], input_size=args.input_size,
                      model_gsd=gsd, epochs=args.epochs,
                      samples_per_epoch=args.samples_per_epoch, batch_size=args.batch_size,
                      lr=args.lr or DEFAULT_LR[args.model], seed=args.seed,
                      threads=args.threads)
    out = Path(args.out or f"out/train/{args.name}-{args.model}")
    out.mkdir(parents=True, exist_ok=True)
    record = {"model": args.model, "name": args.name, "config": asdict(cfg),
              "data": args.data, "format": args.fmt, "classes": sorted(classes),
              "scene_gsd": args.gsd, "split_file": args.split,
              "split": {k: [i.image_id for i in v] for k, v in parts.items()},
              "synthetic": args.synthetic, "synthetic_classes": args.synthetic_classes,
              "synthetic_weight": args.synthetic_weight, "dedupe_iou": args.dedupe_iou}
    (out / "run.json").write_text(json.dumps(record, indent=1))
    print(f"training {cfg.arch} on {len(train_scenes)} scenes "
          f"({sum(s.count for s in train_scenes)} objects), validating on {len(val_scenes)}")
    result = train(cfg, train_scenes, val_scenes, out, weights, resume=not args.no_resume)
    print(f"best validation relative CMAE {result['best_val_relative_cmae']:.4f}; run in {out}")
    return 0
