"""The offline simulator with the shipped counters on generated scenes (known truth)."""

import math

import numpy as np
import pytest

from ground.counter import GroundCounter
from lab.experiments.sweeps import vanilla_bytes_for
from lab.simulator import SceneSimulator
from lab.synth import SceneConfig, generate_revisits, generate_scene
from onboard.counter import OnboardCounter
from shared.pipeline.config import PipelineConfig
from shared.pipeline.error_model import ErrorModel
from shared.pipeline.throttling import POLICIES

# Counts whole scenes with both shipped counters: the slow tier.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def counters():
    return (OnboardCounter.shipped("aircraft", threads=1, batch_size=8),
            GroundCounter.shipped("aircraft", threads=1))


@pytest.fixture(scope="module")
def scene():
    return generate_scene(SceneConfig(width=1536, height=1024, gsd_m=0.5, layout="airport",
                                      classes=("aircraft",)), seed=3)


ERR = ErrorModel([0.2, 0.05, 0.5, 0.2], {"30": [0.5, 0.1], "50": [0.4, 0.08], "75": [0.3, 0.06],
                                 "90": [0.3, 0.05]}, 0.8)


def test_budgets_hold_and_baselines_bracket(counters, scene):
    sim = SceneSimulator(scene, *counters, error_model=ERR)
    assert sim.natural == 512
    everything = sim.run(PipelineConfig(policy="vanilla", dedup=False), 1.0, 1.0)
    assert everything.total == pytest.approx(
        sum(sim.ground_count(everything.plan, i, 90, False)
            for i in range(len(everything.plan.grid))))
    for policy in POLICIES:
        r = sim.run(PipelineConfig(policy=policy, conf_p=0.1, conf_q=0.9), 0.1, 1.0)
        assert r.plan.decisions.bytes_used <= 0.1 * sim.raw_bytes(90)
        assert r.plan.ledger.total <= sim.full_energy * (1 + 1e-9)
        assert sum(r.tiles_by_provenance.values()) == len(r.plan.grid)
    nothing = sim.run(PipelineConfig(policy="vanilla"), 0.0, 1.0)
    assert nothing.total == 0.0


def test_onboard_only_at_full_energy_counts_every_tile(counters, scene):
    on, _ = counters
    sim = SceneSimulator(scene, *counters)
    r = sim.run(PipelineConfig(policy="onboard-only", dedup=False, adaptive_tiling=False),
                0.0, 1.0)
    assert r.plan.inferences == len(r.plan.grid)
    assert r.total == pytest.approx(on.count_tiles(scene.load_pixels(), 0.5).total, rel=1e-6)
    half = sim.run(PipelineConfig(policy="onboard-only", dedup=False, adaptive_tiling=False),
                   0.0, 0.5)
    assert half.plan.inferences < len(half.plan.grid)
    assert half.tiles_by_provenance["uncounted"] == len(half.plan.grid) - half.plan.inferences


def test_the_same_seed_gives_the_same_numbers(counters, scene):
    a = SceneSimulator(scene, *counters).run(PipelineConfig(policy="random", seed=4), 0.2, 1.0)
    b = SceneSimulator(scene, *counters).run(PipelineConfig(policy="random", seed=4), 0.2, 1.0)
    assert a.total == b.total and (a.plan.decisions.action == b.plan.decisions.action).all()


def test_revisits_skip_inferences_through_the_cache(counters):
    from shared.pipeline.dedup import RevisitCache

    # Clear sky: clouds move between passes, and a tile under a new cloud is (rightly) not
    # a duplicate.
    caps = generate_revisits(SceneConfig(width=1536, height=1536, gsd_m=0.5, cloud_cover=0.0,
                                         classes=("aircraft",), layout="airport"),
                             seed=5, n=2, max_shift_px=24)
    cache = RevisitCache()
    cfg = PipelineConfig(policy="onboard-only")
    first = SceneSimulator(caps[0], *counters).run(cfg, 0.0, 1.0, cache)
    second = SceneSimulator(caps[1], *counters).run(cfg, 0.0, 1.0, cache)
    assert first.plan.inferences == len(first.plan.grid)
    assert second.plan.inferences < len(second.plan.grid)
    assert any(s and s.startswith("scene:") for s in second.plan.reused_from)
    assert abs(second.total - first.total) < 0.1 * max(first.total, 5)


def test_vanilla_bytes_needed_interpolates_and_flags_unreachable():
    curve = [{"bytes_fraction": 0.1, "cmae": 90.0}, {"bytes_fraction": 0.5, "cmae": 50.0},
             {"bytes_fraction": 1.0, "cmae": 10.0}]
    need, ok = vanilla_bytes_for(30.0, curve)
    assert ok and math.isclose(need, 0.75)
    assert vanilla_bytes_for(5.0, curve) == (1.0, False)
    assert vanilla_bytes_for(95.0, curve) == (0.1, True)
    assert np.isfinite(need)
