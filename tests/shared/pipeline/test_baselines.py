"""The baselines as policies.
"""

from __future__ import annotations

from shared.pipeline.decisions import DOWNLINK, UNCOUNTED
from shared.pipeline.throttling import throttle

from .candidates import cands


def test_vanilla_streams_in_capture_order_and_counts_nothing():
    d = throttle("vanilla", cands([0.1, 0.9, 0.5], [10, 10, 10]), 25, 90)
    assert d.action.tolist() == [DOWNLINK, DOWNLINK, UNCOUNTED]
