"""``targetfuse eval-ground-options``: which ground counter to run, chosen on validation.

The ground has compute the satellite lacks; this scores what it could spend it on, per
(source, class) group of a split (validation, to choose): the deep counter, the shallow
counter's float32 weights (what the ground could run at a fraction of the deep's cost),
each with test-time augmentation (the mean over the four 90-degree rotations), and blends
``w x deep-TTA + (1 - w) x shallow-TTA``. Per option: the mean over groups with at least
``MIN_OBJECTS`` objects of the relative CMAE, the per-tile MAE against the shallow float32
counter's (the onboard counter up to int8 rounding), and milliseconds per tile on this
machine's thread budget.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ground.class_network import rotation_mean
from ground.counter import load_network
from lab.data.classes import load_class_map
from lab.data.label_cleaning import DEFAULT_IOU
from lab.data.realdev import add_real_dev_option
from lab.evaluation.evaluate import truth_objects
from lab.evaluation.sources import covered_images
from lab.models.nets import build
from lab.training.sources import SPLITS_DIR, parse_sources, split_ids
from shared.counting import count_scene
from shared.model_bundle import MODELS_DIR, card_path
from shared.model_card import load_card
from shared.preprocess import limit_detail, tile_px
from shared.tile_grid import true_counts

MIN_OBJECTS = 10
BLENDS = (0.25, 0.5, 0.75)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-ground-options",
                       help="score the ground counter's options (deep, shallow, TTA, blends)")
    p.add_argument("--model", default="objects")
    p.add_argument("--models-dir", default=str(MODELS_DIR))
    p.add_argument("--sources", required=True)
    p.add_argument("--part", default="val", help="split part (default val: this chooses)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--splits-dir", default=str(SPLITS_DIR))
    p.add_argument("--json", default=None)
    add_real_dev_option(p)
    p.set_defaults(func=run)


def rotation_runner(model: torch.nn.Module, tta: bool):
    """A counter callable over a torch network, optionally averaging the four rotations."""
    def run(batch: np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(batch, np.float32))
        with torch.inference_mode():
            d, m = rotation_mean(model, x) if tta else model(x)[:2]
        return d.numpy(), m.numpy()
    return run


def load_torch(card_file: Path, weights: str) -> torch.nn.Module:
    return load_network(load_card(card_file), card_file.parent / weights, build)


def collect(model: str, models_dir: Path, sources: list[str], part: str,
            splits_dir: Path = SPLITS_DIR, root=None) -> tuple[list[dict], dict[str, float]]:
    """Per (image, class): per-tile truth and each base option's per-tile counts; and the
    milliseconds per tile of each base option."""
    shallow_card = card_path(model, "onboard", models_dir)
    deep_card = card_path(model, "ground", models_dir)
    card, on_card = load_card(deep_card), load_card(shallow_card)
    nets = {"shallow": load_torch(shallow_card, on_card.extra["torch_weights"]),
            "deep": load_torch(deep_card, card.weights)}
    cards = {"shallow": on_card, "deep": card}  # each cuts tiles at its own geometry
    runners = {f"{name}{'-tta' if tta else ''}": (rotation_runner(net, tta), cards[name])
               for name, net in nets.items() for tta in (False, True)}
    class_map = load_class_map()
    seconds = {k: 0.0 for k in runners}
    tiles_seen, rows = 0, []
    for source in sources:
        ids = split_ids(source, splits_dir).get(part, [])
        for img, covered, _ in covered_images(source, ids, card.classes, class_map, root,
                                              DEFAULT_IOU):
            pixels, gsd = img.load_pixels(), img.meta.gsd_m
            outs = {}
            for name, (run, c) in runners.items():
                t0 = time.perf_counter()
                natural = _tile_px(c, gsd)
                outs[name] = count_scene(run, limit_detail(pixels, gsd, c.detail_gsd_m),
                                         natural, c.input_size, c.input_size / natural, 8)
                seconds[name] += time.perf_counter() - t0
            grid = outs["deep"].grid
            tiles_seen += len(grid)
            for c in covered:
                k = card.classes.index(c)
                objects, _ = truth_objects(img, class_map.names_of(c), DEFAULT_IOU)
                rows.append({"source": source, "class": c,
                             "truth": true_counts(grid, objects).ravel().astype(float),
                             **{n: o.class_counts[:, k] for n, o in outs.items()}})
    ms = {k: 1000 * v / max(tiles_seen, 1) for k, v in seconds.items()}
    return rows, ms


def _tile_px(card, gsd: float | None) -> int:
    """Source pixels per tile (a card with a detail GSD takes an unknown GSD to be it, as
    ``shared.counting.TileCounter`` does: both counters then cut the same grid)."""
    return tile_px(card.input_size, card.model_gsd_m, gsd or card.detail_gsd_m)


def options(rows: list[dict], ms: dict[str, float]) -> dict[str, dict]:
    """Each option's per-tile counts as a function of a row, with its time per tile."""
    opts = {name: (lambda r, n=name: r[n], ms[name]) for name in ms}
    for w in BLENDS:
        opts[f"blend {w:g} deep-tta"] = (
            lambda r, w=w: w * r["deep-tta"] + (1 - w) * r["shallow-tta"],
            ms["deep-tta"] + ms["shallow-tta"])
    return opts


def score(rows: list[dict], ms: dict[str, float], min_objects: int = MIN_OBJECTS) -> dict:
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(f"{r['source']}/{r['class']}", []).append(r)
    kept = {g: rs for g, rs in groups.items() if sum(r["truth"].sum() for r in rs) >= min_objects}
    result = {}
    base = {g: _group(rs, lambda r: r["shallow"]) for g, rs in kept.items()}
    for name, (fn, t) in options(rows, ms).items():
        per = {g: _group(rs, fn) for g, rs in kept.items()}
        result[name] = {
            "ms_per_tile": round(t, 2),
            "mean_relative_cmae": _mean([v["relative_cmae"] for v in per.values()]),
            "tile_mae_vs_shallow": _mean([per[g]["tile_mae"] / base[g]["tile_mae"]
                                          for g in per if base[g]["tile_mae"] > 0]),
            "groups": per}
    return result


def _group(rows: list[dict], fn) -> dict:
    truth = np.array([r["truth"].sum() for r in rows])
    pred = np.array([float(np.sum(fn(r))) for r in rows])
    tiles_t = np.concatenate([r["truth"] for r in rows])
    tiles_p = np.concatenate([fn(r) for r in rows])
    return {"objects": int(truth.sum()),
            "relative_cmae": round(float(np.mean(np.abs(pred - truth)) / truth.mean()), 4),
            "tile_mae": round(float(np.mean(np.abs(tiles_p - tiles_t))), 4)}


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    sources = parse_sources(args.sources)
    rows, ms = collect(args.model, Path(args.models_dir), sources, args.part,
                       Path(args.splits_dir), args.real_dev)
    result = {"model": args.model, "part": args.part, "sources": sources,
              "threads": args.threads, "min_objects": MIN_OBJECTS,
              "options": score(rows, ms)}
    for name, o in result["options"].items():
        print(f"{name:22s} mean relative CMAE {o['mean_relative_cmae']}  tile MAE vs shallow "
              f"{o['tile_mae_vs_shallow']}  {o['ms_per_tile']} ms/tile")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0
