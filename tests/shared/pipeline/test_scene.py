"""The onboard half on scenes whose right answer is known by construction.

The count function here reads the number of bright 'objects' painted into a tile (a
deterministic stand-in for the counter's input/output contract, not for the counter: the
real counters run in tests/lab/test_simulator.py)."""

import numpy as np
import pytest

from shared.annotations import Footprint
from shared.pipeline.config import PipelineConfig
from shared.pipeline.decisions import DOWNLINK, UNCOUNTED
from shared.pipeline.dedup import RevisitCache
from shared.pipeline.energy import EnergyModel
from shared.pipeline.scene import SceneBudgets, SceneCounter, plan_scene

from .test_dedup import relit, textured, with_object


def painted(tile: np.ndarray) -> int:
    import cv2

    mask = (tile.min(axis=2) >= 245).astype(np.uint8)
    return cv2.connectedComponents(mask)[0] - 1


def count_fn(calls):
    def f(i, tile, tile_size):
        calls.append(i)
        return float(painted(tile)), 0.9, np.full((64, 64), painted(tile) / 4096, np.float32)
    return f


ENERGY = EnergyModel(j_per_flop=1e-9, radio_w=0.0, capture_j_per_mpx=0.0)
FLOPS = 1e9  # 1 J per inference


def scene_of(tiles):
    rows = [np.concatenate(tiles[i:i + 2], axis=1) for i in (0, 2)]
    return np.ascontiguousarray(np.concatenate(rows, axis=0))


def test_exact_duplicates_are_counted_once_and_look_alikes_are_not_reused():
    base = with_object(textured(5), 30, 30)
    look_alike = with_object(base, 150, 180)
    noisy = np.clip(base + np.random.default_rng(1).normal(0, 2, base.shape), 0, 255)
    scene = scene_of([base, noisy.astype(np.uint8), look_alike, textured(8)])
    calls = []
    plan = plan_scene(scene, "s", SceneCounter(count_fn(calls), FLOPS, 256),
                      SceneBudgets(0, 10.0, ENERGY),
                      PipelineConfig(
        policy="onboard-only"))
    assert plan.inferences == 3 and len(calls) == 3
    assert plan.reused.tolist() == [True, False, False, False] or \
        plan.reused.tolist() == [False, True, False, False]
    assert plan.onboard.tolist() == [1.0, 1.0, 2.0, 0.0]


def test_energy_runs_out_and_tiles_stay_uncounted():
    scene = scene_of([textured(s) for s in range(4)])
    plan = plan_scene(scene, "s", SceneCounter(count_fn([]), FLOPS, 256),
                      SceneBudgets(0, 2.5, ENERGY),
                      PipelineConfig(
        policy="onboard-only", dedup=False))
    assert plan.inferences == 2
    assert plan.decisions.action.tolist()[2:] == [UNCOUNTED, UNCOUNTED]
    assert plan.ledger.total <= 2.5


def test_a_revisit_is_taken_from_the_cache_by_footprint():
    scene = scene_of([with_object(textured(s), 40 * s, 50) for s in range(4)])
    fp = Footprint((500.0, 0.5, 0.0, 900.0, 0.0, -0.5))
    cache = RevisitCache()
    cfg = PipelineConfig(policy="onboard-only")
    first = plan_scene(scene, "t0", SceneCounter(count_fn([]), FLOPS, 256),
                       SceneBudgets(0, 10.0, ENERGY), cfg, footprint=fp, cache=cache)
    assert first.inferences == 4
    # The same ground 16 px later, re-lit: the interior tile (0, 0) lies on earlier ground.
    shifted = np.zeros_like(scene)
    shifted[:-16, :-16] = scene[16:, 16:]
    fp2 = Footprint((500.0 + 8.0, 0.5, 0.0, 900.0 - 8.0, 0.0, -0.5))
    calls = []
    second = plan_scene(relit(shifted, 3), "t1", SceneCounter(count_fn(calls), FLOPS, 256),
                        SceneBudgets(0, 10.0, ENERGY), cfg, footprint=fp2, cache=cache)
    assert second.reused[0] and second.reused_from[0] == "scene:t0"
    assert 0 not in calls
    assert second.onboard[0] == pytest.approx(first.onboard[0], abs=0.2)


def test_a_scene_too_large_for_the_revisit_cache_keeps_no_mosaic_state():
    scene = scene_of([with_object(textured(s), 40 * s, 50) for s in range(4)])
    fp = Footprint((500.0, 0.5, 0.0, 900.0, 0.0, -0.5))
    cfg = PipelineConfig(policy="onboard-only")
    roomy = RevisitCache()
    kept = plan_scene(scene, "t0", SceneCounter(count_fn([]), FLOPS, 256),
                      SceneBudgets(0, 10.0, ENERGY), cfg, footprint=fp, cache=roomy)
    assert len(roomy) == 1 and len(kept.densities) == 4
    assert all(d.shape == (64, 64) for d in kept.densities.values())  # thumbnail-sized
    small = RevisitCache(max_bytes=roomy.nbytes - 1)
    skipped = plan_scene(scene, "t0", SceneCounter(count_fn([]), FLOPS, 256),
                         SceneBudgets(0, 10.0, ENERGY), cfg, footprint=fp, cache=small)
    assert len(small) == 0 and not skipped.densities
    assert np.array_equal(skipped.onboard, kept.onboard)


def test_downlink_budget_and_energy_reserve_hold():
    scene = scene_of([textured(s) for s in range(4)])
    energy = EnergyModel(j_per_flop=1e-9, radio_w=8.0, downlink_bps=1.28e6,
                         capture_j_per_mpx=0.0)  # 1 J per 20,000 bytes
    plan = plan_scene(scene, "s", SceneCounter(count_fn([]), FLOPS, 256),
                      SceneBudgets(30000, 3.5, energy),
                      PipelineConfig(
        policy="low-conf-first", dedup=False))
    # 3.5 J: the downlink reserve (1.5 J for 30 kB) is set aside first, then counting gets
    # what is left: two inferences.
    assert plan.inferences == 2
    assert plan.ledger.total <= 3.5 + 1e-9
    assert plan.decisions.bytes_used <= plan.byte_budget
    assert (plan.decisions.action == DOWNLINK).any()


def test_partial_edge_tiles_neither_lose_nor_double_count():
    # 600 x 520 px with 256 px tiles: a 3 x 3 grid whose last row and column are partial.
    scene = np.full((520, 600, 3), 90, np.uint8)
    spots = [(10, 10), (580, 10), (10, 500), (585, 512), (240, 240), (300, 270)]
    for x, y in spots:
        scene[y:y + 8, x:x + 8] = 255
    plan = plan_scene(scene, "edges", SceneCounter(count_fn([]), FLOPS, 256),
                      SceneBudgets(0, 100.0, ENERGY),
                      PipelineConfig(
        policy="onboard-only", dedup=False))
    assert len(plan.grid) == 9 and plan.grid.tile(8).width == 600 - 512
    assert plan.onboard.sum() == len(spots)


def test_class_counts_ride_with_the_count_and_near_duplicates_copy_them():
    base = with_object(textured(5), 30, 30)
    scene = scene_of([base, base.copy(), textured(7), textured(8)])

    def per_class(i, tile, tile_size):
        n = float(painted(tile))
        return n, 0.9, np.full((64, 64), n / 4096, np.float32), np.array([n, 0.0, 0.5])

    plan = plan_scene(scene, "s", SceneCounter(per_class, FLOPS, 256),
                      SceneBudgets(0, 10.0, ENERGY),
                      PipelineConfig(
        policy="onboard-only"))
    table = plan.class_counts()
    assert table.shape == (4, 3)
    assert plan.reused.sum() == 1
    assert table[0].tolist() == table[1].tolist() == [1.0, 0.0, 0.5]
    # A count function without class counts gives one column equal to the count.
    single = plan_scene(scene, "s", SceneCounter(count_fn([]), FLOPS, 256),
                        SceneBudgets(0, 10.0, ENERGY),
                        PipelineConfig(
        policy="onboard-only"))
    assert single.class_counts()[:, 0].tolist() == single.onboard.tolist()


def test_energy_kept_for_a_downlink_that_does_not_happen_goes_back_to_counting():
    from shared.pipeline.error_model import ErrorModel

    scene = scene_of([with_object(textured(s), 40, 40) for s in range(4)])
    # 4 J: every tile's inference, or 3 inferences and the radio's 1 J for the budget. The
    # error model expects the ground to be worse than any onboard count, so nothing goes
    # down; the reserved joule then counts the fourth tile after all.
    energy = EnergyModel(j_per_flop=1e-9, radio_w=10.0, downlink_bps=8e6,
                         capture_j_per_mpx=0.0, aggregate_j_per_tile=0.0)
    worse_ground = ErrorModel([0.0, 0.0, 0.0, 0.0], {"50": [5.0, 0.0], "75": [5.0, 0.0],
                                                     "90": [5.0, 0.0]}, 1.0)
    plan = plan_scene(scene, "s", SceneCounter(count_fn([]), FLOPS, 256),
                      SceneBudgets(100_000, 4.0, energy), PipelineConfig(dedup=False),
                      error_model=worse_ground)
    assert plan.decisions.bytes_used == 0
    assert plan.inferences == 4 and not np.isnan(plan.onboard).any()
    assert not (plan.decisions.action == UNCOUNTED).any()


def test_no_energy_is_kept_for_a_window_no_tile_fits():
    scene = scene_of([textured(s) for s in range(4)])
    energy = EnergyModel(j_per_flop=1e-9, radio_w=10.0, downlink_bps=8e6,
                         capture_j_per_mpx=0.0, aggregate_j_per_tile=0.0)
    plan = plan_scene(scene, "s", SceneCounter(count_fn([]), FLOPS, 256),
                      SceneBudgets(10, 4.0, energy),
                      PipelineConfig(
        policy="dynamic-conf", dedup=False))
    assert plan.byte_budget == 0 and plan.inferences == 4


def test_a_capture_whose_every_tile_is_a_revisit_keeps_a_column_per_class():
    """Issue 26, finding 1: the third capture of a footprint (every tile reused from the
    cache, none counted here) had one class column for three classes, and failed."""
    scene = scene_of([with_object(textured(s), 40 * s, 50) for s in range(4)])
    fp = Footprint((500.0, 0.5, 0.0, 900.0, 0.0, -0.5))
    cache = RevisitCache()
    cfg = PipelineConfig(policy="onboard-only")

    def per_class(i, tile, tile_size):
        n = float(painted(tile))
        return n, 0.9, np.full((64, 64), n / 4096, np.float32), np.array([n / 2, 0.0, n / 2])

    plans = [plan_scene(scene, f"t{k}", SceneCounter(per_class, FLOPS, 256, n_classes=3),
                        SceneBudgets(0, 10.0, ENERGY), cfg, footprint=fp, cache=cache)
             for k in range(3)]
    assert plans[1].reused.all() or plans[2].reused.all()
    for plan in plans:
        table = plan.class_counts()
        assert table.shape == (4, 3)
        # The reused tiles split like the first capture's counts: half and half.
        np.testing.assert_allclose(table.sum(axis=1), plan.onboard, atol=1e-6)
        np.testing.assert_allclose(table[:, 1], 0.0, atol=1e-6)
