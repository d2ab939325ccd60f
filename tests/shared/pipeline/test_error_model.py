"""The error model's fit: doubt raises the onboard error, compression biases the ground.
"""

from __future__ import annotations

import numpy as np
import pytest

from shared.pipeline.error_model import ErrorModel


def test_error_model_fit_learns_doubt_and_the_ground_bias():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 10, 500).astype(float)
    onboard = truth + rng.choice([0.0, 3.0], 500)
    conf = np.where(onboard == truth, 0.9, 0.1)
    em = ErrorModel.fit(truth, onboard, conf, {90: 1.1 * truth})
    doubtful = em.onboard_error(np.array([5.0]), np.array([0.1]))[0]
    sure = em.onboard_error(np.array([5.0]), np.array([0.9]))[0]
    assert doubtful > 2.0 > 1.0 > sure
    assert em.scale(90) == pytest.approx(1 / 1.1)  # the ground over-counts by 10 %
    assert em.ground_error(np.array([4.0]), 90)[0] == pytest.approx(0.0, abs=1e-6)
    assert em.onboard_error(np.array([np.nan]), np.array([np.nan]))[0] == pytest.approx(
        truth.mean())


def test_each_class_gets_its_own_ground_bias_where_it_has_enough_objects():
    rng = np.random.default_rng(4)
    n = 400
    planes = rng.integers(0, 4, n).astype(float)  # counted right by the ground
    cars = rng.integers(0, 8, n).astype(float)  # half of them missed
    truth = planes + cars
    ground = {90: planes + 0.5 * cars, 50: planes + 0.4 * cars}
    by_class = {"aircraft": (planes, {90: planes, 50: planes}),
                "vehicle": (cars, {90: 0.5 * cars, 50: 0.4 * cars}),
                "ship": (np.ones(5), {90: np.ones(5), 50: np.ones(5)})}  # too few objects
    em = ErrorModel.fit(truth, truth, np.full(n, 0.9), ground, by_class=by_class)
    assert em.scale(90, "aircraft") == pytest.approx(1.0)
    assert em.scale(90, "vehicle") == pytest.approx(2.0)
    assert em.scale(50, "vehicle") == pytest.approx(2.5)
    pooled = truth.sum() / ground[90].sum()
    assert em.scale(90) == pytest.approx(pooled) and 1.0 < pooled < 2.0
    assert em.scale(90, "ship") == em.scale(90) == em.scale(90, "unknown")  # the pooled one
    assert em.scales(90, ["vehicle", "aircraft"]) == pytest.approx([2.0, 1.0])
    assert "ship" not in em.class_scale
    # Saved and loaded (and read from an uplink bundle) with it; older files load without.
    import json
    from dataclasses import asdict

    from shared.uplink.bundle import BundleError, read_error_model

    data = asdict(em)
    assert read_error_model(json.dumps(data).encode()).class_scale == em.class_scale
    assert ErrorModel(**{k: v for k, v in data.items() if k != "class_scale"}).scale(
        90, "vehicle") == pytest.approx(pooled)
    for bad in ({"vehicle": {"90": 0.0}}, {"vehicle": {"900": 1.0}}, {"": {"90": 1.0}},
                {"vehicle": [1.0]}, {"vehicle": {"90": float("nan")}}):
        with pytest.raises(BundleError, match="class_scale"):
            read_error_model(json.dumps({**data, "class_scale": bad}).encode())
