"""Accuracy regression on generated scenes whose truth is known by construction: at equal
byte and energy budgets, the collaborative run's CMAE is no worse than the strongest member of
the onboard-only family and of the vanilla (bent pipe) family, with the shipped aircraft pair
and its calibration (the value policy's monotonicity in the budget is a property test in
tests/shared/pipeline/test_accuracy_properties.py)."""

from __future__ import annotations

import numpy as np
import pytest

from shared.pipeline.baselines import FAMILIES

pytestmark = pytest.mark.slow

POINTS = [(0.10, 1.0), (0.10, 0.5), (0.25, 1.0)]  # (budget fraction, energy fraction)


@pytest.fixture(scope="module")
def errors():
    from ground.counter import GroundCounter
    from lab.simulator import SceneSimulator
    from lab.synth import SceneConfig, generate_scene
    from onboard.counter import OnboardCounter
    from shared.model_bundle import PairFiles, load_error_model, load_tiling
    from shared.pipeline.config import PipelineConfig

    onboard = OnboardCounter.shipped("aircraft", batch_size=8)
    ground = GroundCounter.shipped("aircraft", threads=1)
    pair = PairFiles.of("aircraft")
    model = load_error_model(pair)
    tiling = load_tiling(pair).lookup(0.5)
    out: dict = {}
    for seed in range(6):
        scene = generate_scene(SceneConfig(width=1536, height=1536, gsd_m=0.5,
                                           layout="airport", classes=("aircraft",)),
                               seed=100 + seed, image_id=f"acc-{seed}")
        truth = len(scene.objects)
        sim = SceneSimulator(scene, onboard, ground, tiling=tiling, error_model=model)
        cfg = PipelineConfig(policy="value")
        for point in POINTS:
            runs = {"collaborative": sim.run(cfg, *point),
                    **{k.replace("_", "-"): v for k, v in sim.baselines(cfg, *point).items()}}
            for name, r in runs.items():
                out.setdefault(point, {}).setdefault(name, []).append(abs(r.total - truth))
    return {p: {k: float(np.mean(v)) for k, v in d.items()} for p, d in out.items()}


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("family", ["onboard-only", "vanilla"])
def test_collaborative_is_no_worse_than_the_strongest_baseline_of_each_family(errors, point,
                                                                                family):
    cmae = errors[point]
    strongest = min(cmae[name] for name in FAMILIES[family])
    assert cmae["collaborative"] <= strongest + 1e-9, (point, family, cmae)
