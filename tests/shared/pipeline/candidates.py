"""Candidates for the throttling tests: one quality (90), given confidences and sizes.
"""

from __future__ import annotations

import numpy as np

from shared.pipeline.decisions import Candidates


def cands(conf, sizes, onboard=None, eligible=None):
    conf = np.array(conf, float)
    onboard = np.ones(len(conf)) if onboard is None else np.array(onboard, float)
    return Candidates(onboard, conf, {90: np.array(sizes, np.int64)},
                      None if eligible is None else np.array(eligible))
