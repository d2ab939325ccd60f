"""``targetfuse train``: train one counter (shallow or deep) and record the run for shipping.

The run folder gets ``run.json`` (what was trained on what), per-epoch checkpoints and the
history; ``targetfuse ship`` then turns its best checkpoint into shipped files.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from lab.data.realdev import add_real_dev_option

DEFAULT_ARCH = {"shallow": "shallow-mbv2", "deep": "deep-aspp"}
DEFAULT_LR = {"shallow": 3e-3, "deep": 1.5e-3}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the shallow (onboard) or deep (ground) counter")
    p.add_argument("--model", required=True, choices=["shallow", "deep"])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--sources", default=None,
                      help="real-dev sources, comma-separated: one counter for the class "
                           "map's classes (lab/data/class_map.json), a channel per class, "
                           "trained on each source's committed split")
    what.add_argument("--data", default=None, help="one dataset folder (single-class counter)")
    p.add_argument("--leave-out", default=None,
                   help="with --sources: a source to train without (leave-one-source-out)")
    add_real_dev_option(p)
    p.add_argument("--splits-dir", default=None,
                   help="with --sources: folder of <source>.json splits (default models/splits)")
    p.add_argument("--format", default=None, dest="fmt")
    p.add_argument("--classes", default=None,
                   help="with --data: annotation classes that count, comma-separated")
    p.add_argument("--name", default="aircraft", help="what the pair counts (models/NAME/)")
    p.add_argument("--arch", default=None, help="registry name (default per --model)")
    p.add_argument("--split", default=None,
                   help="JSON {train: [ids], val: [ids], ...}; default: a seeded split by group")
    p.add_argument("--gsd", type=float, default=None, help="scene GSD when the data omit it")
    p.add_argument("--model-gsd", type=float, default=1.0, help="GSD the counter works at")
    p.add_argument("--input-size", type=int, default=256)
    p.add_argument("--crop", type=int, default=None,
                   help="training crop size in px (default --input-size; validation and the "
                        "shipped card use --input-size)")
    p.add_argument("--class-scale", default=None, type=_class_scale,
                   help="CLASS=S,...: count these classes from a pass over the input "
                        "resampled by S (2: enlarged; ground.class_scales); each crop is "
                        "drawn at one scale and labels only that scale's classes")
    p.add_argument("--detail-gsd", type=float, default=None,
                   help="limit the scenes' detail to this GSD before resampling to "
                        "--model-gsd (a ground counter that counts downlinked tiles, which "
                        "are at the onboard counter's GSD, enlarged; with --sources)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--samples-per-epoch", type=int, default=1600)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--synthetic", type=int, default=0,
                   help="add this many synthetic scenes to the training set")
    p.add_argument("--synthetic-classes", default="aircraft",
                   help="synthetic classes that count as the target")
    p.add_argument("--synthetic-weight", type=float, default=0.5,
                   help="sampling weight of a synthetic scene relative to a real one; with "
                        "--sources, the synthetic scenes' share of the crops relative to all "
                        "real sources together")
    p.add_argument("--dedupe-iou", type=float, default=0.3,
                   help="merge labels whose boxes overlap above this IoU (0: off)")
    p.add_argument("--wide-scale-p", type=float, default=0.0,
                   help="share of crops of known-GSD scenes drawn at 0.5-2x scale (scenes "
                        "of unknown GSD always are)")
    p.add_argument("--jpeg-p", type=float, default=0.0,
                   help="share of crops JPEG round-tripped at a quality in 40-95, as the "
                        "ground receives tiles (0: none)")
    p.add_argument("--val-jpeg", type=int, default=None,
                   help="validate on tiles JPEG round-tripped at this quality (as downlinked)")
    p.add_argument("--density-leak", type=float, default=0.0,
                   help="leaky density ReLU while training (keeps a class channel from dying)")
    p.add_argument("--exclusive-weight", type=float, default=0.0,
                   help="weight of the loss on an unlabelled class's density over pixels a "
                        "labelled class's mask covers (partial labels; 0: off)")
    p.add_argument("--val-every", type=int, default=1, help="validate every k epochs")
    p.add_argument("--val-from", type=float, default=0.0,
                   help="first validation after this fraction of the epochs")
    p.add_argument("--pretrained", action="store_true",
                   help="start the trunk from ImageNet weights (effnet-* architectures)")
    p.add_argument("--trunk-lr", type=float, default=1.0,
                   help="the trunk's learning rate relative to --lr")
    p.add_argument("--object-bias", type=float, default=0.5,
                   help="share of crops centred near an object (the rest anywhere: background "
                        "the counter must learn to leave empty)")
    p.add_argument("--count-weight", type=float, default=0.1,
                   help="weight of the tile count loss beside the density MSE")
    p.add_argument("--local-count-weight", type=float, default=0.0,
                   help="weight of the count loss over blocks of --local-block output pixels "
                        "(every neighbourhood's own count, against crowds' undercount; 0: off)")
    p.add_argument("--local-block", type=int, default=8,
                   help="with --local-count-weight: block side in output pixels (x4 input px)")
    p.add_argument("--init-from", default=None,
                   help="start from this checkpoint's weights (a run's best.pt, a warm start "
                        "saved by save_warm_start, or a shipped state dict such as "
                        "models/objects/shallow.pt): fine-tuning or going on across sessions")
    p.add_argument("--teacher", default=None,
                   help="a training run folder or warm start file (the ground counter's) whose "
                        "weights the counter learns from on every crop (distillation)")
    p.add_argument("--distil-weight", type=float, default=1.0,
                   help="with --teacher: weight of the distillation loss")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None, help="run folder (default out/train/NAME-MODEL)")
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--shares", default=None, type=_shares,
                   help="with --sources: each source's share of the training crops, e.g. "
                        "ships_google_earth=0.2,airbus_aircraft=0.1 (the others keep "
                        "lab/training/sources.py's DEFAULT_SHARES; renormalised)")
    p.add_argument("--crowd", type=float, default=0.0,
                   help="with --sources: share of each source's crops whose scene is drawn "
                        "by its labelled object count instead of its area (0-1)")
    p.set_defaults(func=run)


def _shares(text: str) -> dict[str, float]:
    """``ships_google_earth=0.2,kit_cars=0.05`` -> the default shares with those replaced."""
    from lab.training.sources import DEFAULT_SHARES, parse_sources

    out = dict(DEFAULT_SHARES)
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, value = part.partition("=")
        try:
            share = float(value)
            parse_sources(name)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{part!r}: expected SOURCE=SHARE ({exc})") from None
        if not 0.0 <= share <= 1.0:  # NaN too
            raise argparse.ArgumentTypeError(f"{part!r}: a share is in [0, 1]")
        out[name.strip()] = share
    return out


def _class_scale(text: str) -> dict[str, float]:
    """``vehicle=2,ship=1`` -> {"vehicle": 2.0, "ship": 1.0}, each an input scale that
    ``ground.class_scales`` accepts."""
    from ground.class_scales import by_scale

    out = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r}: expected CLASS=SCALE") from None
    try:
        by_scale(list(out), out)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return out


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


def _config(args, gsd: float, arch_config: dict):
    from lab.training.loop import TrainConfig

    if not 0.0 <= args.jpeg_p <= 1.0:
        raise ValueError(f"--jpeg-p is a share in [0, 1], got {args.jpeg_p}")
    if args.val_jpeg is not None and not 1 <= args.val_jpeg <= 100:
        raise ValueError(f"--val-jpeg is a JPEG quality in 1-100, got {args.val_jpeg}")
    if args.local_block < 1 or not 0.0 <= args.local_count_weight < math.inf:
        raise ValueError("--local-block is at least 1 output pixel and --local-count-weight "
                         f"a finite weight >= 0; got {args.local_block}, "
                         f"{args.local_count_weight}")

    return TrainConfig(arch=args.arch or DEFAULT_ARCH[args.model], arch_config=arch_config,
                       input_size=args.input_size, model_gsd=gsd, epochs=args.epochs,
                       crop=args.crop, detail_gsd=args.detail_gsd,
                       class_scale=args.class_scale,
                       samples_per_epoch=args.samples_per_epoch, batch_size=args.batch_size,
                       lr=args.lr or DEFAULT_LR[args.model], seed=args.seed,
                       threads=args.threads, wide_scale_p=args.wide_scale_p,
                       jpeg_p=args.jpeg_p, val_jpeg=args.val_jpeg,
                       val_every=args.val_every, val_from=args.val_from,
                       w_exclusive=args.exclusive_weight, pretrained=args.pretrained,
                       trunk_lr=args.trunk_lr, teacher=args.teacher,
                       object_bias=args.object_bias, w_count=args.count_weight,
                       w_local_count=args.local_count_weight, local_block=args.local_block,
                       init_from=args.init_from,
                       w_distil=args.distil_weight if args.teacher else 0.0)


def run_sources(args: argparse.Namespace) -> int:
    """One counter for every class of the class map, on several sources' splits."""
    from lab.data.classes import load_class_map
    from lab.training.loop import train
    from lab.training.sources import DEFAULT_SHARES, SPLITS_DIR, multi_source, parse_sources

    sources = parse_sources(args.sources)
    if args.leave_out:
        if args.leave_out not in sources:
            raise ValueError(f"--leave-out {args.leave_out!r} is not one of {sources}")
        sources.remove(args.leave_out)
    class_map = load_class_map()
    bar = lambda desc: (lambda it: tqdm(it, desc=desc, unit="scene"))  # noqa: E731
    splits = Path(args.splits_dir or SPLITS_DIR)
    train_set = multi_source(sources, "train", args.model_gsd, class_map, args.real_dev,
                             args.dedupe_iou, shares=args.shares, crowd=args.crowd,
                             progress=bar("train scenes"), splits_dir=splits,
                             detail_gsd=args.detail_gsd)
    val_set = multi_source(sources, "val", args.model_gsd, class_map, args.real_dev,
                           args.dedupe_iou, progress=bar("val scenes"), splits_dir=splits,
                           detail_gsd=args.detail_gsd)
    if not train_set.scenes or not val_set.scenes:
        raise ValueError(f"sources {sources} give no training or no validation scenes")
    if args.synthetic:
        _add_synthetic(args, train_set, list(class_map.classes))
    arch = {"classes": len(class_map.classes)}
    if args.density_leak:
        arch["density_leak"] = args.density_leak
    cfg = _config(args, args.model_gsd, arch)
    name = args.name if args.name != "aircraft" else "objects"
    if args.leave_out:  # its own pair name: never shipped over the full pair
        name = f"{name}-without-{args.leave_out}"
    out = Path(args.out or f"out/train/{name}-{args.model}")
    out.mkdir(parents=True, exist_ok=True)
    record = {"model": args.model, "name": name, "config": asdict(cfg),
              "sources": sources, "left_out": args.leave_out,
              "classes": list(class_map.classes), "class_map": "lab/data/class_map.json",
              "split_files": {s: _shown(splits / f"{s}.json") for s in sources},
              "real_dev": args.real_dev,
              "split": {part: {s: [sc.image_id for sc in data.scenes if sc.source == s]
                               for s in sources}
                        for part, data in (("train", train_set), ("val", val_set))},
              "shares": args.shares or DEFAULT_SHARES, "crowd": args.crowd,
              "dedupe_iou": args.dedupe_iou, "synthetic": args.synthetic,
              "synthetic_weight": args.synthetic_weight if args.synthetic else None}
    (out / "run.json").write_text(json.dumps(record, indent=1))
    per = {s: sum(1 for sc in train_set.scenes if sc.source == s) for s in sources}
    print(f"training {cfg.arch} for {list(class_map.classes)} on {len(train_set.scenes)} "
          f"scenes {per}, validating on {len(val_set.scenes)}")
    result = train(cfg, train_set.scenes, val_set.scenes, out, train_set.weights,
                   resume=not args.no_resume, class_names=list(class_map.classes))
    print(f"best validation relative CMAE {result['best_val_relative_cmae']:.4f}; run in {out}")
    return 0


def _add_synthetic(args, train_set, classes: list[str]) -> None:
    """Synthetic scenes at the counter's GSD, every class labelled, as one more source whose
    share of the crops is ``--synthetic-weight`` of the real sources' total."""
    from lab.synth import SceneConfig, generate_scene
    from lab.training.data import load_scene

    real_share = sum(train_set.weights[i] * sc.pixels.shape[0] * sc.pixels.shape[1]
                     for i, sc in enumerate(train_set.scenes))
    added = []
    for k in tqdm(range(args.synthetic), desc="synthetic scenes", unit="scene"):
        layout = ("airport", "harbour", "urban", "mixed")[k % 4]
        cfg = SceneConfig(width=1024, height=1024, gsd_m=args.model_gsd, layout=layout)
        img = generate_scene(cfg, seed=args.seed * 1000 + k, image_id=f"synth{k}")
        added.append(load_scene(img, args.model_gsd, [{c} for c in classes],
                                labelled=[True] * len(classes), source="synthetic"))
    area = sum(sc.pixels.shape[0] * sc.pixels.shape[1] for sc in added)
    for sc in added:
        train_set.scenes.append(sc)
        train_set.weights.append(args.synthetic_weight * real_share / max(area, 1))


def run(args: argparse.Namespace) -> int:
    if args.sources:
        return run_sources(args)
    if not args.fmt or not args.classes:
        raise ValueError("--data needs --format and --classes")
    from lab.data.formats import read_dataset
    from lab.training.data import load_scene
    from lab.training.loop import train

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
    cfg = _config(args, gsd, {})
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


def _shown(path: Path) -> str:
    """A path relative to the project when it lies inside it (records stay portable)."""
    from shared.paths import PROJECT_ROOT

    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)
