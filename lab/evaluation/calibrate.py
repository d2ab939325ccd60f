"""``targetfuse calibrate``: the pipeline's per-counter calibration, stored beside the models.

* Tiling (Alg. 1, ``shared.pipeline.tiling``): on the validation part of a split, the
  relative CMAE (mean of both counters', as they count the same tiles; ``--objective
  onboard`` for the onboard counter's alone) and inferences per scene at each tile size the
  three-way search asks for, and (``--exhaustive-step``) at every size of a regular grid for
  comparison. Writes ``models/NAME/tiling.json`` (entry for the scenes' GSD).
* Error model (``shared.pipeline.error_model.ErrorModel``): on the training part, each tile's
  onboard count and confidence, true count, and the ground counter's count of the tile as
  received (resized to the counter's input, JPEG at each quality), at the calibrated tile
  size. Writes
  ``models/NAME/error_model.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ground.counting import ground_count
from lab.evaluation.evaluate import truth_objects
from lab.evaluation.options import add_data_options, parse_classes, select_images
from shared.counting import run_tiles
from shared.model_bundle import PairFiles, load_tiling
from shared.pipeline import tiling
from shared.pipeline.codec import decode_tile, downlink_pixels, encode_tile
from shared.pipeline.config import PipelineConfig
from shared.pipeline.error_model import ErrorModel
from shared.tile_grid import TileGrid, true_counts


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="calibrate tile size and error model of a counter pair")
    add_data_options(p)
    p.add_argument("--split", required=True, help="split JSON with 'train' and 'val' parts")
    p.add_argument("--s-min", type=float, default=0.5, help="x the natural tile size")
    p.add_argument("--s-max", type=float, default=2.0, help="x the natural tile size")
    p.add_argument("--threshold", type=int, default=48, help="stop below this interval (px)")
    p.add_argument("--lam", type=float, default=tiling.DEFAULT_LAMBDA)
    p.add_argument("--exhaustive-step", type=int, default=16,
                   help="also sweep every this many px for comparison (0: skip)")
    p.add_argument("--objective", default="pair", choices=["pair", "onboard"],
                   help="accuracy term: both counters' mean relative CMAE, or the onboard's")
    p.add_argument("--threads", type=int, default=2, help="ground counter threads")
    p.add_argument("--store", default="best", choices=["best", "search"],
                   help="store the best size measured (search and sweep) or Alg. 1's answer")
    p.add_argument("--skip-error-model", action="store_true")
    p.add_argument("--tiles-out", default=None,
                   help="also save the error model's per-tile table here (.npz)")
    p.add_argument("--skip-tiling", action="store_true",
                   help="keep the stored tile size (fit the error model only)")
    p.set_defaults(func=run)


def _load(args, part):
    from lab.data.formats import read_dataset

    classes = parse_classes(args.classes)
    ds = read_dataset(args.data, args.fmt, gsd_m=args.gsd)
    images = select_images(ds.images, f"{args.split}:{part}")
    return images, classes


class TileSizeObjective:
    """Relative CMAE and inferences per scene at a tile size.

    Both counters see the same tiles (the onboard counts them, the ground counts those sent
    down, resized the same way), so by default the accuracy term is the mean of the two
    counters' relative CMAE; with ``ground=None`` it is the onboard counter's alone."""

    def __init__(self, onboard, scenes, lam, ground=None):
        self.onboard, self.scenes, self.lam, self.ground = onboard, scenes, lam, ground
        w, h = scenes[0][0].shape[1], scenes[0][0].shape[0]
        self.natural = onboard.tile_size_for(scenes[0][2])
        self.ref_tiles = tiling.tiles_for(w, h, self.natural)
        self.points: dict[int, dict] = {}

    def measure(self, s: int) -> dict:
        if s not in self.points:
            errs, g_errs, truths, tiles, secs = [], [], [], 0, 0.0
            for pixels, truth, _ in self.scenes:
                grid = TileGrid(pixels.shape[1], pixels.shape[0], s)
                crops = [grid.crop(pixels, i) for i in range(len(grid))]
                t0 = time.perf_counter()
                counts, _, _ = self.onboard.count_at(crops, s)
                secs += time.perf_counter() - t0
                errs.append(abs(counts.sum() - truth))
                if self.ground is not None:
                    g = run_tiles(self.ground.run_batch, crops, self.ground.input_size,
                                  self.ground.input_size / s, self.ground.batch_size).counts
                    g_errs.append(abs(g.sum() - truth))
                truths.append(truth)
                tiles += len(grid)
            mean_truth = max(float(np.mean(truths)), 1e-9)
            on_rel = float(np.mean(errs)) / mean_truth
            rel = on_rel if self.ground is None else (on_rel + np.mean(g_errs) / mean_truth) / 2
            per_scene = tiles / len(self.scenes)
            self.points[s] = {
                "relative_cmae": round(float(rel), 5), "onboard_relative_cmae": round(on_rel, 5),
                "tiles_per_scene": per_scene,
                "seconds_per_scene": round(secs / len(self.scenes), 4),
                "objective": round(tiling.objective(rel, per_scene, self.ref_tiles, self.lam), 5)}
        return self.points[s]

    def __call__(self, s: int) -> float:
        return self.measure(s)["objective"]


def run(args: argparse.Namespace) -> int:
    from onboard.counter import OnboardCounter

    models_dir = Path(args.models_dir)
    onboard = OnboardCounter.shipped(args.model, models_dir, batch_size=8)
    val, classes = _load(args, "val")
    scenes = [(img.load_pixels(), len(truth_objects(img, classes, args.dedupe_iou)[0]),
               img.meta.gsd_m) for img in tqdm(val, desc="loading val", unit="scene")]
    gsds = {g for _, _, g in scenes}
    if len(gsds) != 1:
        raise ValueError(f"calibrate one GSD at a time; the val scenes have {sorted(gsds)}")
    ground = None
    if args.objective == "pair":
        from ground.counter import GroundCounter

        ground = GroundCounter.shipped(args.model, models_dir, threads=args.threads)
    f = TileSizeObjective(onboard, scenes, args.lam, ground)
    gsd = float(gsds.pop())
    if args.skip_tiling:
        table = load_tiling(PairFiles.of(args.model, models_dir))
        entry = table.lookup(gsd) if table else None
        if entry is None:
            raise ValueError(f"no stored tile size for {args.model} at {gsd} m")
        fit_and_save(args, models_dir, onboard, classes, entry.tile_size)
        return 0
    lo, hi = round(args.s_min * f.natural), round(args.s_max * f.natural)
    search = tiling.ternary_search(f, lo, hi, args.threshold)
    print(f"three-way search over [{lo}, {hi}] px: tile size {search.tile_size} after "
          f"{search.iterations} iterations, {len(search.evaluations)} evaluations, objective "
          f"{search.evaluations[search.tile_size]:.4f}")
    record = {"ternary_evaluations": len(search.evaluations)}
    if args.exhaustive_step:
        sizes = list(range(lo, hi + 1, args.exhaustive_step))
        full = tiling.exhaustive(f, sizes)
        best = full.evaluations[full.tile_size]
        record.update({"exhaustive_evaluations": len(sizes), "exhaustive_best": full.tile_size,
                       "exhaustive_best_objective": best,
                       "ternary_gap": round(search.evaluations[search.tile_size] / best - 1, 4)})
        print(f"exhaustive sweep every {args.exhaustive_step} px: best {full.tile_size} "
              f"(objective {best:.4f}) from {len(sizes)} evaluations; the search's answer is "
              f"{100 * record['ternary_gap']:.1f}% above it with "
              f"{len(search.evaluations) / len(sizes):.2f}x the evaluations")
    chosen = search.tile_size
    if args.store == "best":
        chosen = min(f.points, key=lambda k: f.points[k]["objective"])
    record["stored"] = args.store
    files = PairFiles.of(args.model, models_dir)
    table = load_tiling(files) or tiling.TilingTable(args.model)
    table.put(tiling.TilingEntry(gsd, chosen, f.points[chosen]["objective"], args.lam,
                                 {str(k): v for k, v in sorted(f.points.items())},
                                 method=json.dumps({"search_answer": search.tile_size,
                                                    **record})))
    print(f"stored tile size {chosen} px ({args.store})")
    print(f"wrote {table.save(files.tiling)}")
    if not args.skip_error_model:
        fit_and_save(args, models_dir, onboard, classes, chosen)
    return 0


def fit_and_save(args, models_dir: Path, onboard, classes, tile_size: int) -> None:
    from ground.counter import GroundCounter

    ground = GroundCounter.shipped(args.model, models_dir, threads=1)
    train, _ = _load(args, "train")
    model = fit_error_model(onboard, ground, train, classes, tile_size,
                            PipelineConfig().qualities, args.dedupe_iou, args.tiles_out)
    path = PairFiles.of(args.model, models_dir).error_model
    model.save(path)
    print(f"wrote {path}: {json.dumps(vars(model))}")


def fit_error_model(onboard, ground, images, classes, tile_size, qualities, dedupe_iou,
                    tiles_out: str | None = None) -> ErrorModel:
    """``tiles_out``: also save the per-tile table (npz) there, for analysis."""
    truth, on, conf, gr = [], [], [], {q: [] for q in qualities}
    for img in tqdm(images, desc="error model", unit="scene"):
        pixels = img.load_pixels()
        grid = TileGrid(pixels.shape[1], pixels.shape[0], tile_size)
        tiles = [grid.crop(pixels, i) for i in range(len(grid))]
        c, p, _ = onboard.count_at(tiles, tile_size)
        on.append(c)
        conf.append(p)
        truth.append(true_counts(grid, truth_objects(img, classes, dedupe_iou)[0]).ravel())
        for q in qualities:
            for t in tiles:
                sent = downlink_pixels(t, tile_size, onboard.input_size)
                rgb = decode_tile(encode_tile(sent, q))
                gr[q].append(ground_count(ground, rgb, img.meta.gsd_m, onboard.input_size))
    table = {"truth": np.concatenate(truth), "onboard": np.concatenate(on),
             "confidence": np.concatenate(conf),
             **{f"ground_q{q}": np.array(v) for q, v in gr.items()}}
    if tiles_out:
        Path(tiles_out).parent.mkdir(parents=True, exist_ok=True)
        np.savez(tiles_out, **table)
    return ErrorModel.fit(table["truth"], table["onboard"], table["confidence"],
                          {q: table[f"ground_q{q}"] for q in qualities},
                          {"tiles": int(sum(len(t) for t in truth)), "scenes": len(images),
                           "tile_size": tile_size})
