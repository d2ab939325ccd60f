"""Where the onboard side's planning time goes, by scene size: a profile of ``plan_scene``.

Real Airbus scenes (2560 px, 0.5 m) are mosaicked into larger ones (``--sizes``, in scene
widths: 1 = one scene, 2 = a 2 x 2 mosaic, ...) and planned once each with the shipped
onboard counter (int8 ONNX, one thread) at the default settings, the way the onboard worker
plans them (no precomputed counts; the pair's tiling and error model as the service loads
them). Per size: tiles, seconds, seconds per tile, and the
share of exclusive time in each part (descriptors, near-duplicate verification, contexts
(k-means and silhouette), inference, JPEG size estimates, the rest), from cProfile. Run it
at two commits to compare before and after a change (ratios measured in one run: these
machines are shared and noisy).

    .venv/bin/python benchmarks/planning.py --sizes 1,2,4 --model aircraft
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time

import numpy as np

from onboard.counter import OnboardCounter
from shared.pipeline.budgets import full_onboard_energy, raw_tile_bytes
from shared.pipeline.config import PipelineConfig
from shared.pipeline.energy import EnergyModel
from shared.pipeline.error_model import ErrorModel
from shared.pipeline.scene import SceneBudgets, SceneCounter, plan_scene

# Which functions' exclusive time counts as which part (matched on "file:function").
PARTS = {
    "descriptors": ("dedup.py:descriptor", "dedup.py:_log_hu", "dedup.py:grey",
                    "dedup.py:thumbnail", "meanStdDev", "HuMoments", "moments", "Sobel",
                    "magnitude", "cvtColor", "_methods.py:_mean", "_methods.py:_std",
                    "_methods.py:_var"),
    # np.percentile's internals (partition, unique, index arithmetic) are verification's.
    "verification": ("dedup.py:residual", "dedup.py:near_duplicate", "percentile",
                     "interp", "_quantile", "blur", "partition", "_unique", "_get_indexes",
                     "_lerp", "take_along_axis"),
    "imports": ("marshal.loads", "_bootstrap", "importlib"),
    "contexts": ("silhouette", "kmeans", "KMeans", "_k_means", "pairwise", "cdist"),
    "inference": ("InferenceSession.run", "session.run", "onnxruntime"),
    "jpeg sizes": ("imencode", "encode_tile"),
}


def mosaic(scenes: list[np.ndarray], k: int) -> np.ndarray:
    """A k x k mosaic of real scenes (cycled), each cropped to the smallest one's size."""
    h = min(s.shape[0] for s in scenes)
    w = min(s.shape[1] for s in scenes)
    rows = [np.concatenate([scenes[(r * k + c) % len(scenes)][:h, :w] for c in range(k)], 1)
            for r in range(k)]
    return np.ascontiguousarray(np.concatenate(rows, 0))


def part_of(key: tuple) -> str:
    name = f"{key[0].rsplit('/', 1)[-1]}:{key[2]}"
    for part, marks in PARTS.items():
        if any(m in name for m in marks):
            return part
    return "rest"


def profile_once(pixels: np.ndarray, counter: OnboardCounter, cfg: PipelineConfig,
                 error_model: ErrorModel | None, tiling) -> dict:
    energy = EnergyModel()
    natural = counter.tile_size_for(0.5)
    flops = float(counter.card.flops_per_tile)
    budget = 0.1 * raw_tile_bytes(pixels, natural, cfg.raw_quality)
    joules = full_onboard_energy(pixels, natural, energy, flops)

    def count_fn(i, tile, size):
        return counter.count_tile(i, tile, size)

    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    plan = plan_scene(pixels, "bench",
                      SceneCounter(count_fn, flops, natural, input_size=counter.input_size),
                      SceneBudgets(budget, joules, energy), cfg, tiling=tiling,
                      error_model=error_model)
    prof.disable()
    seconds = time.perf_counter() - t0
    shares: dict[str, float] = {}
    rest = []
    for key, (_, _, tt, _, _) in pstats.Stats(prof).stats.items():
        shares[part_of(key)] = shares.get(part_of(key), 0.0) + tt
        if part_of(key) == "rest":
            rest.append((tt, f"{key[0].rsplit('/', 1)[-1]}:{key[2]}"))
    total = sum(shares.values()) or 1.0
    return {"tiles": len(plan.grid), "seconds": round(seconds, 2),
            "seconds_per_tile": round(seconds / max(len(plan.grid), 1), 4),
            "shares": {k: round(v / total, 3) for k, v in sorted(shares.items())},
            "rest_top": [[name, round(tt / total, 3)] for tt, name in sorted(rest)[::-1][:5]]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="1,2", help="mosaic widths in scenes, comma-separated")
    p.add_argument("--model", default="aircraft")
    p.add_argument("--scenes", type=int, default=4, help="real scenes to mosaic from")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    from scenes import real_scenes, source

    # Real Airbus scenes from ../shared (or $TARGETFUSE_REAL_DEV); on a fresh clone without
    # them, pieces of the shipped sample, else generated ones (``benchmarks/scenes.py``).
    scenes = real_scenes(args.scenes)
    print(f"imagery: {source()}", flush=True)
    counter = OnboardCounter.shipped(args.model, threads=1)
    error_model, table = counter.bundle.error_model, counter.bundle.tiling
    tiling = table.lookup(0.5) if table else None
    cfg = PipelineConfig(policy="value" if error_model else "dynamic-conf")
    rows = []
    for k in (int(s) for s in args.sizes.split(",")):
        pixels = mosaic(scenes, k)
        row = {"mosaic": f"{k}x{k}", "pixels": f"{pixels.shape[1]}x{pixels.shape[0]}",
               **profile_once(pixels, counter, cfg, error_model, tiling)}
        rows.append(row)
        shares = "  ".join(f"{n} {100 * v:.1f}%" for n, v in row["shares"].items())
        print(f"{row['pixels']:>11s}  {row['tiles']:5d} tiles  {row['seconds']:7.2f} s  "
              f"{row['seconds_per_tile']:.4f} s/tile  {shares}", flush=True)
        print("             rest: " + ", ".join(f"{n} {100 * v:.1f}%"
                                                  for n, v in row["rest_top"]), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
