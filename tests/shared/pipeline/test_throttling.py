import itertools

import numpy as np
import pytest

from shared.pipeline.selection import ACCEPT, DISCARD
from shared.pipeline.throttling import (
    DOWNLINK,
    UNCOUNTED,
    Candidates,
    ErrorModel,
    knapsack,
    throttle,
)


def cands(conf, sizes, onboard=None, eligible=None):
    conf = np.array(conf, float)
    onboard = np.ones(len(conf)) if onboard is None else np.array(onboard, float)
    return Candidates(onboard, conf, {90: np.array(sizes, np.int64)},
                      None if eligible is None else np.array(eligible))


def test_low_conf_first_sends_least_confident_and_accepts_the_rest():
    c = cands([0.9, 0.1, 0.5, 0.3, 0.05], [10, 10, 10, 10, 10])
    d = throttle("low-conf-first", c, 25, 90, conf_p=0.08)
    assert d.action.tolist() == [ACCEPT, DOWNLINK, ACCEPT, DOWNLINK, DISCARD]
    assert d.bytes_used == 20


def test_fixed_conf_discards_what_is_left_below_conf_q():
    c = cands([0.9, 0.1, 0.5, 0.3, 0.7], [10] * 5)
    d = throttle("fixed-conf", c, 20, 90, conf_p=0.0, conf_q=0.6)
    assert d.action.tolist() == [ACCEPT, DOWNLINK, DISCARD, DOWNLINK, ACCEPT]


def test_dynamic_conf_moves_conf_q_with_the_budget():
    conf = [0.95, 0.2, 0.4, 0.6, 0.85]
    # Ample budget: conf_q rises past 0.85 (its tile goes down), and past 0.95 too.
    big = throttle("dynamic-conf", cands(conf, [10] * 5), 100, 90, conf_p=0.1, conf_q=0.5)
    assert (big.action == DOWNLINK).all() and big.conf_q_effective == 1.0
    # Tight budget: conf_q drops until the band fits; the band's top is accepted.
    small = throttle("dynamic-conf", cands(conf, [10] * 5), 20, 90, conf_p=0.1, conf_q=0.5)
    assert small.action.tolist() == [ACCEPT, DOWNLINK, DOWNLINK, ACCEPT, ACCEPT]
    assert small.conf_q_effective == pytest.approx(0.6)


def test_every_policy_keeps_the_budget_and_skips_ineligible_tiles():
    rng = np.random.default_rng(0)
    c = Candidates(rng.uniform(0, 5, 30), rng.uniform(0, 1, 30),
                   {q: rng.integers(50, 400, 30) for q in (30, 90)},
                   eligible=rng.uniform(size=30) > 0.3)
    em = ErrorModel([0.2, 0.1, 0.5, 0.3], {"30": [0.4, 0.1], "90": [0.2, 0.05]}, 1.0)
    for policy in ("onboard-only", "low-conf-first", "fixed-conf", "dynamic-conf", "value",
                   "random"):
        d = throttle(policy, c, 1500, 90, conf_p=0.1, conf_q=0.8, error_model=em,
                     qualities=[30, 90])
        down = d.action == DOWNLINK
        assert d.bytes_used <= 1500
        assert d.bytes_used == sum(c.sizes[int(q)][i] for i, q in enumerate(d.quality) if q)
        assert not (down & ~c.eligible).any(), policy


def test_vanilla_streams_in_capture_order_and_counts_nothing():
    d = throttle("vanilla", cands([0.1, 0.9, 0.5], [10, 10, 10]), 25, 90)
    assert d.action.tolist() == [DOWNLINK, DOWNLINK, UNCOUNTED]


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


def test_bad_budget_and_policy_are_refused():
    c = cands([0.5], [10])
    with pytest.raises(ValueError):
        throttle("greedy", c, 10, 90)
    with pytest.raises(ValueError):
        throttle("low-conf-first", c, -1, 90)
    with pytest.raises(ValueError):
        throttle("value", c, 10, 90)  # no error model


def test_value_policy_spends_leftover_bytes_on_quality_then_more_tiles():
    c = Candidates(np.array([5.0, 1.0]), np.array([0.0, 1.0]),
                   {50: np.array([40, 10]), 90: np.array([80, 20])})
    em = ErrorModel([0.0, 0.0, 0.0, 1.0], {"50": [0.2, 0.0], "90": [0.2, 0.0]}, 1.0)
    lean = throttle("value", c, 100, 90, error_model=em, qualities=[50, 90], fill=False)
    assert lean.action.tolist() == [DOWNLINK, ACCEPT] and lean.quality.tolist() == [50, 0]
    full = throttle("value", c, 100, 90, error_model=em, qualities=[50, 90])
    assert full.action.tolist() == [DOWNLINK, DOWNLINK]
    assert full.quality.tolist() == [90, 90] and full.bytes_used == 100
