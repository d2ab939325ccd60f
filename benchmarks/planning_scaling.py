"""Planning time against tiles: is ``plan_scene`` linear in the number of tiles?

Scenes of 25, 100, 400, 1,600 and 6,400 tiles of 64 px (so every tile costs the same to
prepare) are cut from a mosaic of real Airbus scenes (0.5 m: 320 to 5,120 px a side) and
planned at the onboard service's defaults (value policy with the shipped error model, a
downlink budget of 10 % of the raw tile bytes, energy to count every tile). Counts come
from the shipped onboard counter, computed beforehand and answered by ``count_fn`` (as the
simulator does): what is timed is planning alone, split into preparing the tiles
(``prepare_tiles``: JPEG sizes, thumbnails, descriptors, contexts) and deciding (dedup,
throttling, energy). Prints seconds per tile at each size and its ratio to the smallest's,
measured in one run.

    .venv/bin/python benchmarks/planning_scaling.py --out docs/performance/planning.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from onboard.counter import OnboardCounter
from shared.pipeline.budgets import full_onboard_energy, raw_tile_bytes
from shared.pipeline.config import PipelineConfig
from shared.pipeline.decisions import DOWNLINK
from shared.pipeline.energy import EnergyModel
from shared.pipeline.scene import SceneBudgets, SceneCounter, plan_scene
from shared.pipeline.tiles import prepare_tiles
from shared.tile_grid import TileGrid

TILE = 64


def mosaic(side: int) -> np.ndarray:
    """``side`` px a side of real Airbus scenes laid out 2560 px apart (cycled)."""
    from scenes import real_scenes  # real ones, else the shipped sample's, else generated

    scenes = real_scenes(4)
    k = -(-side // 2560)
    rows = [np.concatenate([scenes[(r * k + c) % len(scenes)] for c in range(k)], 1)
            for r in range(k)]
    return np.ascontiguousarray(np.concatenate(rows, 0)[:side, :side])


def plan_once(pixels: np.ndarray, counts, cfg, error_model, counter) -> dict:
    energy = EnergyModel()
    flops = float(counter.card.flops_per_tile)
    budget = 0.1 * raw_tile_bytes(pixels, TILE, cfg.raw_quality)
    joules = full_onboard_energy(pixels, TILE, energy, flops)
    onboard, conf, dens = counts

    def count_fn(i, tile, size):
        return float(onboard[i]), float(conf[i]), dens[i]

    t0 = time.perf_counter()
    prep = prepare_tiles(pixels, TILE, cfg, counter.input_size)
    t1 = time.perf_counter()
    plan = plan_scene(pixels, "scaling",
                      SceneCounter(count_fn, flops, TILE, input_size=counter.input_size),
                      SceneBudgets(budget, joules, energy), cfg, error_model=error_model,
                      prepare=lambda s: prep)
    t2 = time.perf_counter()
    return {"prepare_s": t1 - t0, "decide_s": t2 - t1, "inferences": plan.inferences,
            "downlinked": int((plan.decisions.action == DOWNLINK).sum())}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tiles", default="25,100,400,1600,6400")
    p.add_argument("--repeats", type=int, default=3, help="runs per size (median kept)")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    counter = OnboardCounter.shipped("objects", threads=1)
    error_model = counter.bundle.error_model
    cfg = PipelineConfig(policy="value")
    sizes = [int(s) for s in args.tiles.split(",")]
    big = mosaic(int(round(max(sizes) ** 0.5)) * TILE)
    rows = []
    for n in sizes:
        side = int(round(n ** 0.5)) * TILE
        pixels = np.ascontiguousarray(big[:side, :side])
        grid = TileGrid(side, side, TILE)
        counts = counter.count_at([grid.crop(pixels, i) for i in range(len(grid))], TILE)
        runs = [plan_once(pixels, counts, cfg, error_model, counter)
                for _ in range(args.repeats)]
        prep = statistics.median(r["prepare_s"] for r in runs)
        decide = statistics.median(r["decide_s"] for r in runs)
        rows.append({"tiles": len(grid), "side_px": side, "prepare_s": round(prep, 3),
                     "decide_s": round(decide, 3), "seconds": round(prep + decide, 3),
                     "seconds_per_tile": round((prep + decide) / len(grid), 5),
                     "inferences": runs[0]["inferences"], "downlinked": runs[0]["downlinked"]})
    from scenes import source

    print(f"imagery: {source()}", flush=True)
    base = rows[0]["seconds_per_tile"]
    for r in rows:
        r["per_tile_vs_smallest"] = round(r["seconds_per_tile"] / base, 2)
        print(json.dumps(r), flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(
            {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "tile_px": TILE,
             "policy": cfg.policy, "imagery": source(), "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
