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
