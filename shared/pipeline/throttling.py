"""Bandwidth-aware throttling: which tiles go down in a contact window (TargetFuse Alg. 2).

Input: per tile the onboard count and calibrated confidence (NaN when energy ran out before
the tile was counted), the encoded size of the tile at each offered JPEG quality, and which
tiles may go down at all (all of them by default). The tiles may come from several scenes:
a contact window's budget is planned over everything waiting for it. Output: per tile an
action (ACCEPT the onboard count, DOWNLINK at a quality, DISCARD, or UNCOUNTED) such that the
downlinked bytes never exceed the window's budget. Tiles that do not fit are skipped
and smaller ones still packed (first fit), in every policy.

Policies (``POLICIES``):

* ``onboard-only``: nothing goes down; every counted tile is accepted.
* ``low-conf-first``: discard below conf_p; downlink the rest in ascending confidence until
  the budget is spent; count the remainder onboard (accept).
* ``fixed-conf``: as low-conf-first, but of the tiles left when the budget is spent only
  those above the fixed conf_q are accepted; the others are discarded.
* ``dynamic-conf`` (Alg. 2): discard below conf_p, accept above conf_q, then move conf_q with
  the budget: while the band [conf_p, conf_q] holds more bytes than the window carries,
  conf_q drops past the band's most confident tile (accepting it); while bytes are left
  over, conf_q rises past the next accepted tile (making it a candidate). The band is then
  sorted by size, largest first, and packed while bandwidth remains; band tiles left over
  are accepted.
* ``value``: maximise the expected reduction of counting error per downlinked byte. For
  tile i at quality q the gain is ``E|onboard_i - truth_i| - E|ground_iq - truth_i|`` from an
  :class:`ErrorModel` fit on the training split (the onboard error from the calibrated
  confidence and the predicted count, the ground error from the count and the JPEG quality;
  an uncounted tile's "onboard error" is the mean tile count). Choosing at most one quality
  per tile under the byte budget is a multiple-choice knapsack, solved exactly by dynamic
  programming over bytes in units of ``budget / resolution`` (exact when sizes are whole
  units). Bytes the knapsack leaves are then spent, not wasted (``fill``): raising chosen
  tiles' quality, then sending the tiles with the largest expected onboard error. Tiles not
  sent are accepted.
* ``random``: counted tiles go down in a seeded random order until the budget is spent; the
  rest are accepted (the baseline at equal budget).
* ``vanilla``: the bent pipe: no onboard counting; tiles go down in capture order until the
  budget is spent; the rest stay uncounted.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from shared.pipeline.selection import ACCEPT, DISCARD, check_thresholds, select

UNCOUNTED, DOWNLINK = 2, 3
ACTION_NAMES = {ACCEPT: "accepted", DISCARD: "discarded", UNCOUNTED: "uncounted",
                DOWNLINK: "downlinked"}


@dataclass
class Candidates:
    onboard: np.ndarray  # (n,) onboard count, NaN = not counted
    confidence: np.ndarray  # (n,) calibrated confidence, NaN = not counted
    sizes: dict[int, np.ndarray]  # JPEG quality -> (n,) encoded bytes
    eligible: np.ndarray | None = None  # (n,) bool: may go down (False: count reused)

    def __post_init__(self) -> None:
        n = len(self.onboard)
        if len(self.confidence) != n or any(len(s) != n for s in self.sizes.values()):
            raise ValueError("onboard, confidence and sizes must have one entry per tile")
        if not self.sizes:
            raise ValueError("at least one encoding quality is needed")
        if self.eligible is None:
            self.eligible = np.ones(n, bool)

    def __len__(self) -> int:
        return len(self.onboard)

    @property
    def counted(self) -> np.ndarray:
        return ~np.isnan(np.asarray(self.onboard, float))


@dataclass
class Decisions:
    action: np.ndarray  # (n,) ACCEPT / DISCARD / UNCOUNTED / DOWNLINK
    quality: np.ndarray  # (n,) JPEG quality of downlinked tiles, 0 otherwise
    bytes_used: int
    conf_q_effective: float | None = None

    def names(self) -> list[str]:
        return [ACTION_NAMES[int(a)] for a in self.action]


def onboard_features(count: np.ndarray, conf: np.ndarray) -> np.ndarray:
    c = np.maximum(np.asarray(count, float), 0)
    u = 1 - np.asarray(conf, float)
    return np.stack([np.ones_like(c), c, u, u * c], axis=-1)


@dataclass
class ErrorModel:
    """Expected absolute count error of each counter on one tile, and the ground's bias.

    Onboard: ``w . [1, count, 1 - conf, (1 - conf) * count]``: the error grows with the
    count and with the doubt the calibrated confidence expresses. Ground, per JPEG quality:
    ``a + b * count``, and ``ground_scale[q]`` = true objects per ground-counted object on
    tiles received at quality q (compression blurs objects away: a bias that adds up over a
    scene while per-tile errors stay small; aggregation multiplies ground counts by it).
    An uncounted tile's error is the mean tile count. All weights >= 0, least squares on
    training tiles (``fit``).
    """

    onboard: list[float]
    ground: dict[str, list[float]]  # str(quality) -> [a, b]
    prior_count: float
    ground_scale: dict[str, float] = field(default_factory=dict)
    fit_on: dict = field(default_factory=dict)

    def onboard_error(self, count: np.ndarray, conf: np.ndarray) -> np.ndarray:
        count = np.asarray(count, float)
        conf = np.nan_to_num(np.asarray(conf, float), nan=0.0)
        err = onboard_features(np.nan_to_num(count), conf) @ np.asarray(self.onboard)
        return np.where(np.isnan(count), self.prior_count, err)

    def ground_error(self, count: np.ndarray, quality: int) -> np.ndarray:
        a, b = self._nearest(self.ground, quality)
        c = np.nan_to_num(np.asarray(count, float), nan=self.prior_count)
        return a + b * np.maximum(c, 0)

    def scale(self, quality: int) -> float:
        return float(self._nearest(self.ground_scale, quality)) if self.ground_scale else 1.0

    @staticmethod
    def _nearest(table: dict, quality: int):
        qs = sorted(int(q) for q in table)
        # Unknown quality: the nearest fitted one at or below it (never optimistic).
        below = [q for q in qs if q <= quality] or qs[:1]
        return table[str(below[-1])]

    @classmethod
    def fit(cls, truth: np.ndarray, onboard: np.ndarray, conf: np.ndarray,
            ground: dict[int, np.ndarray], meta: dict | None = None) -> ErrorModel:
        truth, onboard = np.asarray(truth, float), np.asarray(onboard, float)
        w_on = _fit_positive(onboard_features(onboard, conf), np.abs(onboard - truth))
        ground_coef, scale = {}, {}
        for q, g in ground.items():
            g = np.asarray(g, float)
            scale[str(q)] = float(truth.sum() / g.sum()) if g.sum() > 0 else 1.0
            x = np.stack([np.ones_like(onboard), np.maximum(onboard, 0)], axis=1)
            ground_coef[str(q)] = _fit_positive(x, np.abs(scale[str(q)] * g - truth))
        return cls(w_on, ground_coef, float(truth.mean()), scale,
                   meta or {"tiles": int(len(truth))})

    def save(self, path: Path) -> Path:
        Path(path).write_text(json.dumps(asdict(self), indent=1) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: Path) -> ErrorModel:
        return cls(**json.loads(Path(path).read_text()))


def _fit_positive(x: np.ndarray, y: np.ndarray) -> list[float]:
    """Least squares ``y ~ x @ w`` with every weight >= 0."""
    from sklearn.linear_model import LinearRegression

    if len(y) < x.shape[1]:
        return [float(y.mean()) if len(y) else 0.0] + [0.0] * (x.shape[1] - 1)
    lr = LinearRegression(positive=True, fit_intercept=False).fit(x, y)
    return [float(v) for v in lr.coef_]


def check_budget(budget: float) -> int:
    if not (isinstance(budget, int | float) and math.isfinite(budget) and budget >= 0):
        raise ValueError(f"downlink budget must be a number of bytes >= 0, got {budget!r}")
    return int(budget)


def _pack(order, sizes: np.ndarray, budget: int, action: np.ndarray, quality: np.ndarray,
          q: int) -> int:
    """First fit in ``order``: downlink each tile that still fits. Returns bytes used."""
    used = 0
    for i in order:
        if used + sizes[i] <= budget:
            used += int(sizes[i])
            action[i] = DOWNLINK
            quality[i] = q
    return used


def _base(c: Candidates) -> tuple[np.ndarray, np.ndarray]:
    action = np.where(c.counted, ACCEPT, UNCOUNTED).astype(np.int8)
    return action, np.zeros(len(c), np.int16)


def _by_confidence(c: Candidates, idx: np.ndarray) -> np.ndarray:
    # Uncounted tiles first (nothing is known about them), then ascending confidence.
    conf = np.nan_to_num(np.asarray(c.confidence, float)[idx], nan=-1.0)
    return idx[np.argsort(conf, kind="stable")]


def onboard_only(c: Candidates, budget: int, quality: int, **_) -> Decisions:
    action, q = _base(c)
    return Decisions(action, q, 0)


def low_conf_first(c: Candidates, budget: int, quality: int, conf_p: float = 0.0,
                   fixed_conf_q: float | None = None, **_) -> Decisions:
    action, q = _base(c)
    band = select(c.confidence, conf_p, max(conf_p, fixed_conf_q or conf_p))
    action[band == DISCARD] = DISCARD
    pool = np.flatnonzero((band != DISCARD) & c.eligible)
    used = _pack(_by_confidence(c, pool), c.sizes[quality], budget, action, q, quality)
    if fixed_conf_q is not None:
        left = (action == ACCEPT) & (np.nan_to_num(c.confidence, nan=0.0) <= fixed_conf_q)
        action[left] = DISCARD
    return Decisions(action, q, used)


def fixed_conf(c: Candidates, budget: int, quality: int, conf_p: float = 0.0,
               conf_q: float = 0.5, **_) -> Decisions:
    check_thresholds(conf_p, conf_q)
    return low_conf_first(c, budget, quality, conf_p=conf_p, fixed_conf_q=conf_q)


def dynamic_conf(c: Candidates, budget: int, quality: int, conf_p: float = 0.0,
                 conf_q: float = 0.5, **_) -> Decisions:
    action, q = _base(c)
    size = c.sizes[quality]
    band = select(c.confidence, conf_p, conf_q)
    action[band == DISCARD] = DISCARD
    conf = np.nan_to_num(np.asarray(c.confidence, float), nan=-1.0)
    live = (band != DISCARD) & c.eligible
    # Tiles ordered by confidence; the band is a prefix of the live ones, cut at conf_q.
    order = _by_confidence(c, np.flatnonzero(live))
    k = int(((conf[order] <= conf_q)).sum())
    while k > 0 and size[order[:k]].sum() > budget:
        k -= 1  # conf_q drops below the band's most confident tile
    while k < len(order) and size[order[:k + 1]].sum() <= budget:
        k += 1  # bytes to spare: conf_q rises past the next tile
    q_eff = float(conf[order[k]]) if k < len(order) else 1.0
    band_tiles = order[:k]
    # Alg. 2 lines 13-18: the band, largest first, packed while bandwidth remains; then the
    # bytes still free go to the next tiles above the moved conf_q.
    band_tiles = band_tiles[np.argsort(-size[band_tiles], kind="stable")]
    used = _pack(band_tiles, size, budget, action, q, quality)
    used += _pack(order[k:], size, budget - used, action, q, quality)
    return Decisions(action, q, used, q_eff)


def random_policy(c: Candidates, budget: int, quality: int, seed: int = 0, **_) -> Decisions:
    action, q = _base(c)
    pool = np.flatnonzero(c.eligible)
    order = np.random.default_rng(seed).permutation(pool)
    used = _pack(order, c.sizes[quality], budget, action, q, quality)
    return Decisions(action, q, used)


def vanilla(c: Candidates, budget: int, quality: int, **_) -> Decisions:
    """Bent pipe: ignores onboard counts; capture order until the budget is spent."""
    action = np.full(len(c), UNCOUNTED, np.int8)
    q = np.zeros(len(c), np.int16)
    used = 0
    size = c.sizes[quality]
    for i in range(len(c)):
        if used + size[i] > budget:
            break  # a bent pipe streams in order: the window closes mid-scene
        used += int(size[i])
        action[i], q[i] = DOWNLINK, quality
    return Decisions(action, q, used)


def knapsack(values: np.ndarray, weights: np.ndarray, capacity: int,
             resolution: int = 4096) -> tuple[np.ndarray, float]:
    """Multiple-choice 0/1 knapsack: pick at most one option per item.

    ``values``/``weights``: (items, options). Returns the chosen option per item (-1: none)
    and the total value. Weights are rounded up to units of ``ceil(capacity / resolution)``
    (the answer is always feasible; exact when weights are multiples of the unit).
    """
    values, weights = np.asarray(values, float), np.asarray(weights, np.int64)
    n, m = values.shape
    unit = max(1, math.ceil(capacity / resolution))
    w = -(-weights // unit)
    cap = capacity // unit
    best = np.zeros(cap + 1)
    choice = np.full((n, cap + 1), -1, np.int16)
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


def value_policy(c: Candidates, budget: int, quality: int,
                 error_model: ErrorModel | None = None, qualities: list[int] | None = None,
                 fill: bool = True, **_) -> Decisions:
    if error_model is None:
        raise ValueError("the value policy needs an error model (ErrorModel)")
    action, q = _base(c)
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
        used = _fill(c, pool, values.max(1), on_err, qs, budget, used, action, q)
    return Decisions(action, q, used)


def _fill(c: Candidates, pool, gain, on_err, qs, budget, used, action, q) -> int:
    """Bytes of a contact window that go unused are lost, and the error model is fit on
    tiles both counters trained on (so it understates the ground's edge on new scenes):
    spend what the knapsack left, first raising the quality of chosen tiles (largest gain
    first), then sending the other tiles (largest expected onboard error first)."""
    chosen = [int(j) for j in pool[np.argsort(-gain, kind="stable")] if action[j] == DOWNLINK]
    for j in chosen:
        for x in reversed(qs):
            if x <= q[j]:
                break
            extra = int(c.sizes[x][j]) - int(c.sizes[int(q[j])][j])
            if used + extra <= budget:
                used += extra
                q[j] = x
                break
    for j in pool[np.argsort(-on_err, kind="stable")]:
        if action[j] == DOWNLINK:
            continue
        for x in reversed(qs):
            if used + int(c.sizes[x][j]) <= budget:
                used += int(c.sizes[x][j])
                action[j], q[j] = DOWNLINK, x
                break
    return used


POLICIES = {
    "onboard-only": onboard_only,
    "low-conf-first": low_conf_first,
    "fixed-conf": fixed_conf,
    "dynamic-conf": dynamic_conf,
    "value": value_policy,
    "random": random_policy,
    "vanilla": vanilla,
}
PAPER_POLICIES = ("low-conf-first", "fixed-conf", "dynamic-conf")


def throttle(policy: str, c: Candidates, budget: float, quality: int, **params) -> Decisions:
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; one of {sorted(POLICIES)}")
    if quality not in c.sizes:
        raise ValueError(f"no encoded sizes for JPEG quality {quality}")
    decisions = POLICIES[policy](c, check_budget(budget), quality, **params)
    assert decisions.bytes_used <= budget
    return decisions
