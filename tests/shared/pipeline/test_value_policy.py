"""The value policy and its knapsack, on cases whose best answer is known.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from shared.pipeline.decisions import DOWNLINK, Candidates
from shared.pipeline.error_model import ErrorModel
from shared.pipeline.selection import ACCEPT
from shared.pipeline.throttling import throttle
from shared.pipeline.value_policy import knapsack


def test_knapsack_is_exact_on_a_small_case():
    rng = np.random.default_rng(3)
    values = rng.uniform(-1, 5, (7, 2))
    weights = rng.integers(1, 9, (7, 2))
    picked, total = knapsack(values, weights, 15)
    best = 0.0
    for combo in itertools.product([-1, 0, 1], repeat=7):
        w = sum(weights[i, o] for i, o in enumerate(combo) if o >= 0)
        v = sum(values[i, o] for i, o in enumerate(combo) if o >= 0)
        if w <= 15:
            best = max(best, v)
    assert total == pytest.approx(best)
    assert sum(weights[i, o] for i, o in enumerate(picked) if o >= 0) <= 15
    assert sum(values[i, o] for i, o in enumerate(picked) if o >= 0) == pytest.approx(best)


def test_value_policy_solves_the_knapsack_greedy_by_confidence_gets_wrong():
    # Tile 0: least confident but huge; tiles 1 and 2 together fit the budget and are worth
    # more. Low-conf-first takes tile 0 and fills nothing else.
    onboard = np.array([4.0, 6.0, 6.0])
    conf = np.array([0.1, 0.2, 0.2])
    c = Candidates(onboard, conf, {90: np.array([100, 50, 50])})
    em = ErrorModel(onboard=[0.0, 0.0, 0.0, 1.0], ground={"90": [0.0, 0.0]}, prior_count=1.0)
    value = throttle("value", c, 100, 90, error_model=em, qualities=[90])
    assert value.action.tolist() == [ACCEPT, DOWNLINK, DOWNLINK]
    lcf = throttle("low-conf-first", c, 100, 90)
    assert lcf.action.tolist() == [DOWNLINK, ACCEPT, ACCEPT]


def test_value_policy_picks_a_cheaper_quality_when_it_buys_more():
    c = Candidates(np.array([5.0, 5.0]), np.array([0.0, 0.0]),
                   {50: np.array([40, 40]), 90: np.array([80, 80])})
    em = ErrorModel([0.0, 0.0, 0.0, 1.0], {"50": [0.5, 0.0], "90": [0.0, 0.0]}, 1.0)
    d = throttle("value", c, 80, 90, error_model=em, qualities=[50, 90])
    assert d.quality.tolist() == [50, 50]


def test_value_policy_spends_what_the_knapsacks_rounding_leaves():
    # A budget of 8193 bytes: knapsack units of 3 bytes round each 4096-byte tile up to 4098,
    # so the knapsack fits one tile at q90 and one at q50; the fill raises the second.
    c = Candidates(np.array([5.0, 5.0]), np.array([0.0, 0.0]),
                   {50: np.array([2048, 2048]), 90: np.array([4096, 4096])})
    em = ErrorModel([0.0, 0.0, 0.0, 1.0], {"50": [0.2, 0.0], "90": [0.0, 0.0]}, 1.0)
    lean = throttle("value", c, 8193, 90, error_model=em, qualities=[50, 90], fill=False)
    assert sorted(lean.quality.tolist()) == [50, 90]
    full = throttle("value", c, 8193, 90, error_model=em, qualities=[50, 90])
    assert full.quality.tolist() == [90, 90] and full.bytes_used == 8192


def test_spare_bytes_never_send_a_tile_the_error_model_expects_to_lose_on():
    # Tile 1 is sure (confidence 1: no expected onboard error); sending it could only add
    # the ground's error, so spare bytes stay unspent.
    c = Candidates(np.array([5.0, 1.0]), np.array([0.0, 1.0]),
                   {50: np.array([40, 10]), 90: np.array([80, 20])})
    em = ErrorModel([0.0, 0.0, 0.0, 1.0], {"50": [0.2, 0.0], "90": [0.2, 0.0]}, 1.0)
    full = throttle("value", c, 100, 90, error_model=em, qualities=[50, 90])
    assert full.action.tolist() == [DOWNLINK, ACCEPT] and full.bytes_used == 80
