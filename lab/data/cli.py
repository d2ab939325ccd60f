"""``targetfuse data ...``: inspect, split, draw, synthesise and revisit datasets."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lab.data.formats import FORMATS, read_dataset, write_dataset
from lab.data.realdev import add_real_dev_option
from lab.data.splits import split_images
from shared.annotations import Dataset
from shared.tile_grid import TileGrid, true_counts


def add_parser(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="read, split, draw, synthesise datasets")
    cmds = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")

    def dataset_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", required=True, help="dataset folder")
        p.add_argument("--format", required=True, choices=list(FORMATS), dest="fmt")
        p.add_argument("--gsd", type=_positive_float, default=None,
                       help="ground sample distance (m/px) for images that state none")

    p = cmds.add_parser("stats", help="images, objects per class, per-tile truth summary")
    dataset_args(p)
    p.add_argument("--tile-size", type=_positive_int, default=None)
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    p.set_defaults(func=cmd_stats)

    p = cmds.add_parser("split", help="deterministic train/val/test split by image/sequence")
    dataset_args(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fractions", default="train=0.7,val=0.15,test=0.15",
                   type=_fractions, help="NAME=FRACTION,... (default %(default)s)")
    p.add_argument("--group-lookalikes", action="store_true",
                   help="also keep images of the same place together (ORB + homography)")
    p.add_argument("--group-adjacent", action="store_true",
                   help="keep tiles cut side by side from one mosaic together (one tile's "
                        "edge continues the other's; without --group-lookalikes, no ORB)")
    p.add_argument("--balance-classes", action="store_true",
                   help="each split also holds its fraction of every class's objects "
                        "(aircraft, ship, vehicle: lab/data/class_map.json)")
    p.add_argument("--source", default=None,
                   help="real-dev source whose labelling record applies (default: the data "
                        "folder's name when it is one): images it excludes, and classes it "
                        "does not label, weigh nothing")
    p.add_argument("--json", default=None, help="write {split: [image ids]} here")
    p.set_defaults(func=cmd_split)

    p = cmds.add_parser("show", help="draw annotations and a tile grid into a PNG")
    dataset_args(p)
    p.add_argument("--image", default=None, help="image id (default: the first image)")
    p.add_argument("--tile-size", type=_positive_int, default=None)
    p.add_argument("--classes", default=None, help="comma-separated classes to draw")
    p.add_argument("--max-side", type=_positive_int, default=2048)
    p.add_argument("--out", required=True, help="PNG file to write")
    p.set_defaults(func=cmd_show)

    p = cmds.add_parser("synth", help="generate synthetic EO scenes with annotations")
    p.add_argument("--out", required=True, help="dataset folder to write")
    p.add_argument("--format", choices=list(FORMATS), default="dota", dest="fmt")
    p.add_argument("--scenes", type=_positive_int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=_positive_int, default=1024)
    p.add_argument("--height", type=_positive_int, default=1024)
    p.add_argument("--gsd", type=_positive_float, default=0.5)
    p.add_argument("--layout", default="mixed", help="airport, harbour, urban or mixed")
    p.add_argument("--classes", default="aircraft,ship,vehicle")
    p.add_argument("--density", type=_positive_float, default=1.0)
    p.add_argument("--cloud-cover", type=float, default=0.15)
    p.add_argument("--revisits", type=int, default=0,
                   help="captures per footprint (0: independent scenes)")
    p.add_argument("--max-shift", type=int, default=48, help="revisit shift bound, pixels")
    p.add_argument("--change-fraction", type=float, default=0.0,
                   help="fraction of objects moved/added/removed between revisits")
    p.set_defaults(func=cmd_synth)

    p = cmds.add_parser("revisit", help="make revisits of real images (shift, radiometry, "
                                        "noise, re-encoding; same objects)")
    dataset_args(p)
    p.add_argument("--out", required=True)
    p.add_argument("--out-format", choices=list(FORMATS), default=None,
                   help="format to write (default: the input's)")
    p.add_argument("--n", type=_positive_int, default=3, help="revisits per image")
    p.add_argument("--images", type=_positive_int, default=None, help="use the first K images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-shift", type=int, default=32)
    p.set_defaults(func=cmd_revisit)

    p = cmds.add_parser("samples", help="cut the shipped sample scenes (samples/) from the "
                                        "real-dev test splits")
    p.add_argument("--out", default=None, help="folder (default: samples/ in the project)")
    add_real_dev_option(p)
    p.set_defaults(func=cmd_samples)


def cmd_samples(args: argparse.Namespace) -> int:
    from lab.data.samples import SAMPLES_DIR, make_samples

    for e in make_samples(args.out or SAMPLES_DIR, args.real_dev):
        print(f"{e['file']}: {e['truth']} {e['class']}, {e['width']}x{e['height']} px, "
              f"{e['licence']}")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _fractions(text: str) -> dict[str, float]:
    out = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise argparse.ArgumentTypeError(f"expected NAME=FRACTION, got {part!r}")
        out[name.strip()] = float(value)
    return out


def _load(args: argparse.Namespace) -> Dataset:
    return read_dataset(args.data, args.fmt, gsd_m=args.gsd)


def dataset_stats(ds: Dataset, tile_size: int | None = None) -> dict:
    """Figures a user checks first: image count, objects per class, per-tile truth."""
    counts = [img.count() for img in ds.images]
    stats = {"images": len(ds), "objects": ds.total(), "per_class": ds.class_counts(),
             "objects_per_image": {"min": min(counts, default=0), "max": max(counts, default=0),
                                   "mean": round(sum(counts) / max(len(counts), 1), 2)},
             "sizes": sorted({f"{i.meta.width}x{i.meta.height}" for i in ds.images})}
    if tile_size:
        tiles = [true_counts(TileGrid.for_image(img, tile_size), img.objects).ravel()
                 for img in ds.images]
        flat = [int(c) for t in tiles for c in t]
        stats["tiles"] = {"tile_size": tile_size, "tiles": len(flat),
                          "empty": sum(1 for c in flat if c == 0), "max_per_tile": max(flat),
                          "objects": sum(flat)}
    return stats


def cmd_stats(args: argparse.Namespace) -> int:
    ds = _load(args)
    stats = dataset_stats(ds, args.tile_size)
    print(f"{args.data} ({args.fmt}): {stats['images']} images, {stats['objects']} objects")
    for name, n in stats["per_class"].items():
        print(f"  {name:24s} {n:6d}")
    o = stats["objects_per_image"]
    print(f"  objects per image: min {o['min']}, mean {o['mean']}, max {o['max']}")
    if "tiles" in stats:
        t = stats["tiles"]
        print(f"  {t['tile_size']}px tiles: {t['tiles']} tiles, {t['empty']} empty, "
              f"max {t['max_per_tile']} per tile, {t['objects']} objects by centre")
    if args.json:
        Path(args.json).write_text(json.dumps(stats, indent=2))
    return 0


def cmd_split(args: argparse.Namespace) -> int:
    ds = _load(args)
    if args.group_lookalikes or args.group_adjacent:
        from lab.data.lookalike import lookalike_groups

        groups = lookalike_groups(ds.images, orb=args.group_lookalikes,
                                  adjacent=args.group_adjacent)
        for img in ds.images:
            img.meta.sequence = img.meta.sequence or groups[img.image_id]
    counts = None
    if args.balance_classes:
        from lab.data.classes import load_class_map

        cmap = load_class_map()
        source = args.source or Path(args.data).name
        if source not in cmap.sources:
            if args.source:
                raise ValueError(f"no labelling record for source {source!r}; known: "
                                 f"{', '.join(sorted(cmap.sources))}")
            source = None

        def counts(img):
            if source and not cmap.usable(source, img):
                return np.zeros(len(cmap.classes))
            found = cmap.counts(img)
            # Objects of a class the source does not label exhaustively weigh nothing (the
            # few boxed cars of a marina source say nothing about where its cars are).
            covered = cmap.labelled(source, img) if source else cmap.classes
            return np.array([found[c] if c in covered else 0 for c in cmap.classes], float)
    parts = split_images(ds.images, args.fractions, seed=args.seed, class_counts=counts)
    result = {name: [img.image_id for img in imgs] for name, imgs in parts.items()}
    for name, imgs in parts.items():
        line = f"{name:8s} {len(imgs):4d} images {sum(i.count() for i in imgs):6d} objects"
        if counts is not None:
            per = np.sum([counts(i) for i in imgs], axis=0) if imgs else np.zeros(len(cmap.classes))
            line += "  " + " ".join(f"{c} {int(n)}" for c, n in zip(cmap.classes, per,
                                                                     strict=True))
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from lab.data.visualize import save

    ds = _load(args)
    if not ds.images:
        raise ValueError(f"{args.data}: no images")
    image = ds.images[0]
    if args.image is not None:
        found = [i for i in ds.images if args.image in (i.image_id, Path(i.image_id).name)]
        if not found:
            raise ValueError(f"no image {args.image!r} in {args.data}")
        image = found[0]
    classes = set(args.classes.split(",")) if args.classes else None
    out = save(image, args.out, tile_size=args.tile_size, max_side=args.max_side,
               classes=classes, class_names=ds.class_names)
    print(f"{out}: {image.image_id}, {image.count(classes)} objects")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from lab.synth import SceneConfig, generate_revisits, generate_scene

    config = SceneConfig(width=args.width, height=args.height, gsd_m=args.gsd,
                         classes=tuple(c.strip() for c in args.classes.split(",")),
                         density=args.density, cloud_cover=args.cloud_cover, layout=args.layout)
    if args.revisits < 0:
        raise ValueError(f"--revisits must be >= 0, got {args.revisits}")
    images = []
    for k in tqdm(range(args.scenes), desc="scenes", unit="scene"):
        seed = args.seed * 100_003 + k
        if args.revisits:
            images += generate_revisits(config, seed, args.revisits, args.max_shift,
                                        args.change_fraction, scene_id=f"scene{k:04d}")
        else:
            images.append(generate_scene(config, seed, image_id=f"scene{k:04d}"))
    ds = Dataset(images, list(config.classes))
    write_dataset(ds, args.out, args.fmt)
    print(f"wrote {len(images)} images, {ds.total()} objects {ds.class_counts()} "
          f"to {args.out} ({args.fmt})")
    return 0


def cmd_revisit(args: argparse.Namespace) -> int:
    from lab.synth import revisit_real

    ds = _load(args)
    sources = ds.images[: args.images] if args.images else ds.images
    out_images = []
    for k, image in enumerate(tqdm(sources, desc="revisits", unit="image")):
        out_images += revisit_real(image, args.n, seed=args.seed * 100_003 + k,
                                   max_shift_px=args.max_shift)
    fmt = args.out_format or args.fmt
    out = Dataset(out_images, ds.class_names)
    write_dataset(out, args.out, fmt)
    print(f"wrote {len(out_images)} revisits of {len(sources)} images, {out.total()} objects, "
          f"to {args.out} ({fmt})")
    return 0
