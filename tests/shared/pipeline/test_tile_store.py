"""Tiles read once: a plan made with the tiles' counter inputs and thumbnails kept in scratch
files (the onboard service) decides exactly what one made without them decides."""

from __future__ import annotations

import numpy as np
import pytest

from shared.pipeline import dedup
from shared.pipeline.config import PipelineConfig
from shared.pipeline.energy import EnergyModel
from shared.pipeline.error_model import ErrorModel
from shared.pipeline.scene import SceneBudgets, SceneCounter, plan_scene
from shared.pipeline.tiles import SpillStore, prepare_tiles
from shared.preprocess import prepare_tile

from .test_dedup import textured

ENERGY = EnergyModel(j_per_flop=1e-9, radio_w=0.0, capture_j_per_mpx=0.0)


class Windowed:
    """A scene read window by window (as ``onboard.scene_pixels.RasterSource``), counting
    its reads."""

    def __init__(self, pixels):
        self.pixels, self.shape, self.reads = pixels, pixels.shape, 0

    def __getitem__(self, key):
        self.reads += 1
        return np.ascontiguousarray(self.pixels[key])


def scene(seed=0):
    tiles = [textured(s) for s in range(seed, seed + 6)]
    tiles[3] = tiles[1].copy()  # a duplicate: dedup reuses it
    rows = [np.concatenate(tiles[i:i + 3], axis=1) for i in (0, 3)]
    return np.ascontiguousarray(np.concatenate(rows, axis=0)[:470, :700])


def counter(input_size, calls):
    def count_fn(i, tile, tile_size):  # a function of the counter's input only
        x = prepare_tile(tile, input_size, input_size / tile_size)
        calls.append(i)
        c = float(np.abs(x).mean())
        return c, 0.5 + 0.4 * np.tanh(c - 1), np.full((8, 8), c / 64, np.float32)
    return count_fn


@pytest.mark.parametrize(("tile_size", "input_size"), [(128, 64), (128, 128), (64, 128)])
def test_kept_inputs_and_thumbnails_plan_exactly_as_reading_again(tmp_path, tile_size,
                                                                  input_size):
    pixels = scene()
    cfg = PipelineConfig(policy="value", adaptive_tiling=False)
    err = ErrorModel([0.2, 0.3, 1.0, 0.2], {"50": [0.3, 0.1], "75": [0.2, 0.05],
                                          "90": [0.1, 0.02]}, 1.0)
    plans, reads, contexts = [], [], {}
    for spill in (None, tmp_path):
        src = Windowed(pixels)
        preps = {}

        def prepare(size, src=src, preps=preps, spill=spill):
            if size not in preps:
                preps[size] = prep = prepare_tiles(src, size, cfg, input_size,
                                                   spill_dir=spill, spill_bytes=1 << 30)
                # The same contexts and order for both (the descriptors' last bits, and so
                # rare ties in the order, depend on memory alignment: not what is tested).
                first = contexts.setdefault(size, prep.contexts)
                prep.contexts = dedup.ContextPlan(first.contexts, first.order, first.k,
                                                  z=first.z)
            return preps[size]

        calls = []
        plan = plan_scene(src, "s",
                          SceneCounter(counter(input_size, calls), 1e9, tile_size,
                                       input_size=input_size),
                          SceneBudgets(40_000, 1e3, ENERGY), cfg, error_model=err, prepare=prepare)
        plans.append((plan, calls))
        reads.append(src.reads)
        for prep in preps.values():
            prep.close()
    (a, calls_a), (b, calls_b) = plans
    assert calls_a == calls_b and a.inferences == b.inferences > 0
    assert np.array_equal(a.onboard, b.onboard, equal_nan=True)
    assert np.array_equal(a.confidence, b.confidence, equal_nan=True)
    assert np.array_equal(a.reused, b.reused)
    assert np.array_equal(a.decisions.action, b.decisions.action)
    assert np.array_equal(a.decisions.quality, b.decisions.quality)
    assert a.decisions.bytes_used == b.decisions.bytes_used
    n = len(a.grid)
    assert reads[0] == n + a.inferences  # every counted tile read twice
    assert reads[1] == n  # each tile read once


def test_spill_store_round_trip_and_byte_limit(tmp_path):
    store = SpillStore(4, tmp_path, max_bytes=100)
    a = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    g = np.arange(20, dtype=np.uint8).reshape(4, 5)
    assert store.put(0, a) and store.put(2, g)
    assert not store.put(1, np.zeros((10, 10), np.uint8))  # over the limit: not kept
    assert np.array_equal(store[0], a) and np.array_equal(store[2], g)
    assert store.get(1) is None and store.get(3) is None
    with pytest.raises(IndexError):
        store[3]
    assert store.nbytes == 68 and list(tmp_path.iterdir()) == []  # unlinked at once
    store.close()
