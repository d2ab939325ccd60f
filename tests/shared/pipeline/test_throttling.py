
import numpy as np
import pytest

from shared.pipeline.decisions import DOWNLINK, Candidates
from shared.pipeline.error_model import ErrorModel
from shared.pipeline.selection import ACCEPT, DISCARD
from shared.pipeline.throttling import throttle

from .candidates import cands


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


def test_bad_budget_and_policy_are_refused():
    c = cands([0.5], [10])
    with pytest.raises(ValueError):
        throttle("greedy", c, 10, 90)
    with pytest.raises(ValueError):
        throttle("low-conf-first", c, -1, 90)
    with pytest.raises(ValueError):
        throttle("value", c, 10, 90)  # no error model


