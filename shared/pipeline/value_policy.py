"""The value policy: downlink what most reduces the expected counting error per byte.

For tile i at JPEG quality q the gain is ``E|onboard_i - truth_i| - E|ground_iq - truth_i|``
from an :class:`~shared.pipeline.error_model.ErrorModel` (the onboard error from the
calibrated confidence and the predicted count, the ground error from the count and the
quality; an uncounted tile's onboard error is the mean tile count). Choosing at most one
quality per tile under the byte budget is a multiple-choice knapsack (``knapsack``), solved
exactly by dynamic programming over bytes in units of ``budget / resolution`` (exact when
sizes are whole units), in memory that grows with the square root of the tiles. Bytes the
knapsack leaves are then spent, not wasted (``fill``):
raising chosen tiles' quality, then sending the tiles with the largest expected onboard
error, wherever that is expected to lose nothing. Tiles not sent are accepted.
"""

from __future__ import annotations

import math

import numpy as np

from shared.pipeline.decisions import DOWNLINK, Candidates, Decisions, base_decisions
from shared.pipeline.error_model import ErrorModel


def _knapsack_step(best: np.ndarray, values: np.ndarray, w: np.ndarray, cap: int,
                   choice: np.ndarray | None = None) -> np.ndarray:
    """One item of the dynamic programme: the best value at each capacity with it offered
    (``choice``, where given, records the option taken at each capacity, -1: none)."""
    new = best.copy()
    for o in range(len(values)):
        if values[o] <= 0 or w[o] > cap:
            continue
        cand = np.full(cap + 1, -np.inf)
        cand[w[o]:] = best[: cap + 1 - w[o]] + values[o]
        better = cand > new
        new[better] = cand[better]
        if choice is not None:
            choice[better] = o
    return new


def knapsack(values: np.ndarray, weights: np.ndarray, capacity: int,
             resolution: int = 4096) -> tuple[np.ndarray, float]:
    """Multiple-choice 0/1 knapsack: pick at most one option per item.

    ``values``/``weights``: (items, options). Returns the chosen option per item (-1: none)
    and the total value. Weights are rounded up to units of ``ceil(capacity / resolution)``
    (the answer is always feasible; exact when weights are multiples of the unit).

    Memory does not grow with items times capacity: the forward pass keeps the value row
    only at every ``block``-th item (a checkpoint), and the choices are recovered block by
    block from the last, each block's rows recomputed from its checkpoint (the same
    arithmetic in the same order, so the same answer, ties included, as keeping every
    item's row: twice the time, O(sqrt(items) x capacity) memory; 25,600 tiles took a
    105 MB table before).
    """
    values, weights = np.asarray(values, float), np.asarray(weights, np.int64)
    n, m = values.shape
    unit = max(1, math.ceil(capacity / resolution))
    w = -(-weights // unit)
    cap = capacity // unit
    # Checkpoints (8 bytes a unit) and one block's choices (1 byte a unit) balanced.
    block = max(1, math.isqrt(8 * n))
    checkpoints = []
    best = np.zeros(cap + 1)
    for i in range(n):
        if i % block == 0:
            checkpoints.append(best)  # each step makes a new row: no copy needed
        best = _knapsack_step(best, values[i], w[i], cap)
    picked = np.full(n, -1, np.int64)
    c = int(np.argmax(best))
    total = float(best[c])
    dtype = np.int8 if m < 127 else np.int16
    for b in range(len(checkpoints) - 1, -1, -1):
        lo, hi = b * block, min(n, (b + 1) * block)
        choice = np.full((hi - lo, cap + 1), -1, dtype)
        row = checkpoints[b]
        for i in range(lo, hi):
            row = _knapsack_step(row, values[i], w[i], cap, choice[i - lo])
        for i in range(hi - 1, lo - 1, -1):
            o = choice[i - lo, c]
            if o >= 0:
                picked[i] = o
                c -= int(w[i, o])
        checkpoints[b] = None  # done with: freed as the backtrack goes
    return picked, total


def value_policy(c: Candidates, budget: int, quality: int,
                 error_model: ErrorModel | None = None, qualities: list[int] | None = None,
                 fill: bool = True, **_) -> Decisions:
    if error_model is None:
        raise ValueError("the value policy needs an error model (ErrorModel)")
    action, q = base_decisions(c)
    qs = sorted(qualities or [quality])
    missing = [x for x in qs if x not in c.sizes]
    if missing:
        raise ValueError(f"no encoded sizes for JPEG qualities {missing}")
    pool = np.flatnonzero(c.eligible)
    on_err = error_model.onboard_error(c.onboard[pool], c.confidence[pool])
    values = np.stack([on_err - error_model.ground_error(c.onboard[pool], x) for x in qs], 1)
    weights = np.stack([c.sizes[x][pool] for x in qs], 1)
    picked, _ = knapsack(values, weights, budget)
    used = 0
    for j, o in zip(pool, picked, strict=True):
        if o >= 0:
            action[j], q[j] = DOWNLINK, qs[o]
            used += int(c.sizes[qs[o]][j])
    if fill:
        used = _fill(c, pool, values, on_err, qs, budget=budget, used=used, action=action,
                     q=q)
    return Decisions(action, q, used)


def expected_error(c: Candidates, d: Decisions, error_model: ErrorModel) -> float:
    """The scene's expected absolute error under decisions ``d``: the ground's expected
    error on each downlinked tile at its quality, the onboard one on every other eligible
    tile (what the value policy minimises)."""
    pool = np.flatnonzero(c.eligible)
    on_err = error_model.onboard_error(c.onboard[pool], c.confidence[pool])
    total = 0.0
    for k, j in enumerate(pool):
        total += float(error_model.ground_error(c.onboard[j:j + 1], int(d.quality[j]))[0]
                       if d.action[j] == DOWNLINK else on_err[k])
    return total


def _fill(c: Candidates, pool, values, on_err, qs, *, budget, used, action, q) -> int:
    """Bytes of a contact window that go unused are lost: spend what the knapsack left (its
    byte units round sizes up), first raising the quality of chosen tiles (largest gain
    first), then sending the other tiles (largest expected onboard error first), each only
    where the error model expects no loss from it, so that more bytes never mean a larger
    expected error."""
    gain = values.max(1)
    row = {int(j): k for k, j in enumerate(pool)}
    chosen = [int(j) for j in pool[np.argsort(-gain, kind="stable")] if action[j] == DOWNLINK]
    for j in chosen:
        now = values[row[j], qs.index(int(q[j]))]
        for o in range(len(qs) - 1, -1, -1):
            x = qs[o]
            if x <= q[j]:
                break
            extra = int(c.sizes[x][j]) - int(c.sizes[int(q[j])][j])
            if values[row[j], o] >= now and used + extra <= budget:
                used += extra
                q[j] = x
                break
    for j in pool[np.argsort(-on_err, kind="stable")]:
        if action[j] == DOWNLINK:
            continue
        for o in range(len(qs) - 1, -1, -1):
            x = qs[o]
            if values[row[int(j)], o] >= 0 and used + int(c.sizes[x][j]) <= budget:
                used += int(c.sizes[x][j])
                action[j], q[j] = DOWNLINK, x
                break
    return used
