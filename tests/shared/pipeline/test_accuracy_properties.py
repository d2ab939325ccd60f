"""Accuracy properties of throttling that must hold for any scene (hypothesis draws them).

Raising the downlink budget never raises the value policy's expected error: more bytes can
only let it send more, or better, tiles.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.pipeline.decisions import Candidates
from shared.pipeline.error_model import ErrorModel
from shared.pipeline.throttling import throttle
from shared.pipeline.value_policy import expected_error

QUALITIES = (50, 75, 90)


@st.composite
def scenes(draw):
    n = draw(st.integers(1, 40))
    floats = st.floats(0, 30, allow_nan=False)
    onboard = np.array(draw(st.lists(floats, min_size=n, max_size=n)))
    uncounted = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    onboard[uncounted] = np.nan
    conf = np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    base = np.array(draw(st.lists(st.integers(200, 20_000), min_size=n, max_size=n)))
    sizes = {q: (base * (0.5 + q / 100)).astype(np.int64) for q in QUALITIES}
    w = draw(st.lists(st.floats(0, 1), min_size=4, max_size=4))
    ground = {str(q): [draw(st.floats(0, 0.5)) * (1 - q / 200), draw(st.floats(0, 0.2))]
              for q in QUALITIES}
    model = ErrorModel(onboard=w, ground=ground, prior_count=draw(st.floats(0, 10)))
    return Candidates(onboard, conf, sizes), model, int(base.sum())


@settings(max_examples=150, deadline=None)
@given(scenes(), st.lists(st.floats(0, 1.2), min_size=2, max_size=6))
def test_a_larger_budget_never_raises_the_value_policys_expected_error(scene, fractions):
    c, model, raw = scene
    errors = []
    for f in sorted(fractions):
        d = throttle("value", c, f * raw, 90, error_model=model, qualities=list(QUALITIES))
        errors.append(expected_error(c, d, model))
    assert all(b <= a + 1e-6 * max(1.0, a) for a, b in zip(errors, errors[1:], strict=False)), \
        errors
