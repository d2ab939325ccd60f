"""``targetfuse calibrate-sources``: the error model of a multi-class pair, over many sources.

The ``value`` policy needs each counter's expected per-tile error
(``shared.pipeline.error_model``). For a pair trained on several sources it is fit on the
training images of every source (the run's record names them; ``--part val`` fits it out of
sample, on the validation images, where the counters err as on new imagery), each image
counted for the classes its labels cover, at the counter's natural tile size: per tile the
onboard count and confidence, the true count, and the ground's count of the tile as received
(resized to the counter input, JPEG at each quality); the ground's bias correction pooled
over every tile, or with ``--ground-scale by-source`` by the estimator that transfers best
to a source left out (``shared.pipeline.ground_bias``). The ground counter costs ~50 ms a tile
here, so each source contributes at most ``--tiles-per-source`` tiles (a seeded draw of all
its tiles; every source weighs the same, as no source's imagery is the one users will send).
Tile size stays the natural one: no ``tiling.json`` is written, as the scenes' GSDs differ
(and are often unknown) and Alg. 1 calibrates one GSD at a time (``targetfuse calibrate``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ground.counting import ground_class_counts
from lab.data.classes import load_class_map
from lab.data.label_cleaning import DEFAULT_IOU
from lab.data.realdev import add_real_dev_option
from lab.evaluation.sources import covered_images
from shared.model_bundle import MODELS_DIR, PairFiles, card_path
from shared.model_card import load_card
from shared.paths import project_path
from shared.pipeline.codec import decode_tile, downlink_pixels, encode_tile
from shared.pipeline.config import PipelineConfig
from shared.pipeline.error_model import ErrorModel
from shared.pipeline.ground_bias import GROUND_SCALES
from shared.tile_grid import TileGrid, true_counts


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate-sources",
                       help="fit a multi-class pair's error model on its sources' training tiles")
    p.add_argument("--model", default="objects")
    p.add_argument("--models-dir", default=str(MODELS_DIR))
    p.add_argument("--tiles-per-source", type=int, default=240)
    p.add_argument("--ground-scale", choices=GROUND_SCALES, default="pooled",
                   help="the ground's bias correction: one factor pooled over every tile "
                        "(default), or by-source: the estimator that transfers best to a "
                        "left-out source (shared.pipeline.ground_bias)")
    p.add_argument("--part", default="train",
                   help="split part the tiles come from: train (default; tiles the counters "
                        "trained on, in sample) or val (out of sample)")
    p.add_argument("--json", "--out", dest="out", default=None,
                   help="the JSON file to write it to (default models/NAME/error_model.json; "
                        "--out is the older name of this option)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dedupe-iou", type=float, default=DEFAULT_IOU)
    add_real_dev_option(p)
    p.set_defaults(func=run)


def source_tiles(source: str, image_ids: list[str], onboard, class_map, root, dedupe_iou):
    """Every tile of the source's images: (tile pixels, tile size, channels, truth)."""
    out = []
    for img, covered, objects in covered_images(source, image_ids, onboard.classes,
                                                class_map, root, dedupe_iou):
        pixels = img.load_pixels()
        grid = TileGrid(pixels.shape[1], pixels.shape[0], onboard.tile_size_for(img.meta.gsd_m))
        truth = true_counts(grid, objects).ravel()
        channels = onboard.channels(covered)
        out += [(grid.crop(pixels, i), grid.tile_size, channels, int(truth[i]))
                for i in range(len(grid))]
    return out


def run(args: argparse.Namespace) -> int:
    from ground.counter import GroundCounter
    from onboard.counter import OnboardCounter

    models_dir = Path(args.models_dir)
    onboard = OnboardCounter.shipped(args.model, models_dir)
    ground = GroundCounter.shipped(args.model, models_dir, threads=args.threads)
    card = load_card(card_path(args.model, "onboard", models_dir))
    files = card.data.get("split_files") or {}
    if not files:
        raise ValueError(f"the {args.model} card names no sources' splits (train it with "
                         "--sources and ship it)")
    parts = {s: json.loads(project_path(f).read_text()).get(args.part, [])
             for s, f in files.items()}
    parts = {s: ids for s, ids in parts.items() if ids}
    if not parts:
        raise ValueError(f"no source of {args.model} has a {args.part!r} part")
    class_map = load_class_map()
    rng = np.random.default_rng(args.seed)
    qualities = PipelineConfig().qualities
    truth, on, conf, gr, of = [], [], [], {q: [] for q in qualities}, []
    for source, ids in parts.items():
        tiles = source_tiles(source, ids, onboard, class_map, args.real_dev, args.dedupe_iou)
        pick = rng.permutation(len(tiles))[: args.tiles_per_source]
        for k in tqdm(sorted(pick), desc=source, unit="tile"):
            pixels, size, channels, n = tiles[k]
            c, p, _ = onboard.count_at([pixels], size, channels)
            truth.append(n)
            of.append(source)
            on.append(float(c[0]))
            conf.append(float(p[0]))
            sent = downlink_pixels(pixels, size, onboard.input_size)
            for q in qualities:
                rgb = decode_tile(encode_tile(sent, q))
                gr[q].append(float(ground_class_counts(ground, rgb, None, onboard.input_size,
                                                       channels).sum()))
    model = ErrorModel.fit(np.array(truth), np.array(on), np.array(conf),
                           {q: np.array(v) for q, v in gr.items()},
                           {"tiles": len(truth), "sources": sorted(parts), "part": args.part,
                            "tiles_per_source": args.tiles_per_source, "seed": args.seed,
                            "tile_size": "natural"},
                           sources=np.array(of) if args.ground_scale == "by-source" else None)
    path = Path(args.out) if args.out else PairFiles.of(args.model, models_dir).error_model
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    print(f"wrote {path}: {json.dumps(vars(model))}")
    return 0
