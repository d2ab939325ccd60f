"""The knapsack without an items x capacity table: the same answers as the table kept."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.pipeline.value_policy import knapsack


def table_knapsack(values, weights, capacity, resolution=4096):
    """The former solver, kept here as the reference: every item's choices in one table."""
    values, weights = np.asarray(values, float), np.asarray(weights, np.int64)
    n, m = values.shape
    unit = max(1, math.ceil(capacity / resolution))
    w = -(-weights // unit)
    cap = capacity // unit
    best = np.zeros(cap + 1)
    choice = np.full((n, cap + 1), -1, np.int8)
    for i in range(n):
        new = best.copy()
        for o in range(m):
            if values[i, o] <= 0 or w[i, o] > cap:
                continue
            cand = np.full(cap + 1, -np.inf)
            cand[w[i, o]:] = best[: cap + 1 - w[i, o]] + values[i, o]
            better = cand > new
            new[better] = cand[better]
            choice[i, better] = o
        best = new
    picked = np.full(n, -1, np.int64)
    c = int(np.argmax(best))
    total = float(best[c])
    for i in range(n - 1, -1, -1):
        o = choice[i, c]
        if o >= 0:
            picked[i] = o
            c -= int(w[i, o])
    return picked, total


@pytest.mark.parametrize("seed", range(12))
def test_same_decisions_as_the_full_table_on_random_instances(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    m = int(rng.integers(1, 4))
    values = rng.uniform(-0.5, 3, (n, m))
    if seed % 3 == 0:  # ties: many equal values and weights
        values = np.round(values, 1)
    weights = np.sort(rng.integers(500, 40_000, (n, m)), axis=1)
    capacity = int(weights[:, 0].sum() * rng.uniform(0.02, 0.5))
    picked, total = knapsack(values, weights, capacity)
    ref_picked, ref_total = table_knapsack(values, weights, capacity)
    assert np.array_equal(picked, ref_picked)
    assert total == ref_total
    used = sum(int(weights[i, o]) for i, o in enumerate(picked) if o >= 0)
    assert used <= capacity


def test_empty_and_single_item():
    picked, total = knapsack(np.zeros((0, 3)), np.zeros((0, 3), np.int64), 100)
    assert len(picked) == 0 and total == 0.0
    picked, total = knapsack(np.array([[1.0, 2.0]]), np.array([[10, 20]]), 15)
    assert picked.tolist() == [0] and total == 1.0
