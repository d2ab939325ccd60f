"""Selection: band each tile by its onboard confidence (TargetFuse section A.2 and D).

Exactly the paper's rule, with the confidence = calibrated probability that the onboard count
is right (``shared.confidence``):

* confidence < conf_p: **discard** (the tile is not worth the link);
* confidence > conf_q: **accept** the onboard count;
* conf_p <= confidence <= conf_q: **candidate** for downlink, to be counted on the ground.

A tile with no confidence (not counted onboard: energy ran out) is a candidate too: only the
ground can count it.
"""

from __future__ import annotations

import math

import numpy as np

DISCARD, CANDIDATE, ACCEPT = -1, 0, 1


def check_thresholds(conf_p: float, conf_q: float) -> None:
    for name, v in (("conf_p", conf_p), ("conf_q", conf_q)):
        if not (isinstance(v, int | float) and math.isfinite(v) and 0.0 <= v <= 1.0):
            raise ValueError(f"{name} must be a number in [0, 1], got {v!r}")
    if conf_p > conf_q:
        raise ValueError(f"conf_p ({conf_p}) must not exceed conf_q ({conf_q})")


def select(confidence: np.ndarray, conf_p: float, conf_q: float) -> np.ndarray:
    """Per tile: DISCARD (-1), CANDIDATE (0) or ACCEPT (1)."""
    check_thresholds(conf_p, conf_q)
    c = np.asarray(confidence, float)
    band = np.full(c.shape, CANDIDATE, dtype=np.int8)
    known = ~np.isnan(c)
    band[known & (c < conf_p)] = DISCARD
    band[known & (c > conf_q)] = ACCEPT
    return band
