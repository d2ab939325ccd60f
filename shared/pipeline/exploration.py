"""Exploration: a small share of each scene's downlink bytes for tiles drawn at random among
those the throttle accepted onboard, so the ground sees an unbiased sample of the onboard
counter's errors.

Tiles the throttle sends by value are the ones the onboard confidence and the error model
doubt: the ground's counts of them say how wrong the onboard counter is where it already
thought it might be, never where it was sure (a biased sample, useless for refitting the
calibration that chose them). Exploration tiles are a simple random sample of the rest.

Algorithm (``explore``), given the throttle's decisions D0 at the scene's byte budget B and
the exploration share s (``PipelineConfig.exploration_share``, 0 <= s <= ``MAX_SHARE``):

1. The pool: the tiles D0 accepts whose count the onboard counter made itself (counted, not
   reused from a near-duplicate or a revisit, eligible to go down). Discarded and uncounted
   tiles are not in it.
2. The target: T = s x B bytes; s_bar = the mean encoded size of the pool's tiles at the
   exploration quality q_e (the best quality the configuration offers: the ground's count is
   the reference the recalibration trusts).
3. K = floor(T / s_bar) + Bernoulli(frac(T / s_bar)) tiles (at most the pool), drawn
   uniformly without replacement from the pool by a generator seeded with the
   configuration's seed and the scene id (``scene_rng``: the same scene draws the same tiles
   live and in the simulator, whatever came before it). E[K] x s_bar = T: the expected
   exploration bytes are exactly the share, and every pool tile has the same chance,
   E[K] / |pool|, whatever its size or content. A draw bounded by bytes (first fit in random
   order) would favour small tiles, and a JPEG's size grows with what the tile shows.
4. Drawn tiles that would take the scene past B are dropped (only when B itself is smaller
   than the draw; then, and only then, size matters).
5. The throttle runs again at B - bytes(E) with the drawn tiles E withheld (not eligible),
   so the tiles sent by value are chosen as before in the bytes left; E go down at q_e,
   flagged (``Decisions.explored``; ``TileDecision.exploration`` and
   ``TileChunk.exploration`` on the wire). The rerun happens only in scenes that explore.

A scene's exploration bytes vary (a whole tile or none when T is under one tile); their mean
over scenes is the share. Nothing is carried from scene to scene, so a restart, the order
scenes come in and the simulator's replays change nothing. The ground treats an exploration
tile like any downlinked tile: its count replaces the onboard one.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable

import numpy as np

from shared.pipeline.decisions import DOWNLINK, Candidates, Decisions
from shared.pipeline.selection import ACCEPT

MAX_SHARE = 0.2  # more is not exploration: it is a policy of its own

Rethrottle = Callable[[int, np.ndarray], Decisions]  # (budget, eligible) -> decisions


def check_share(share: float) -> float:
    """The share as a float; ValueError naming the rule when it is not a finite number in
    [0, MAX_SHARE]."""
    if isinstance(share, bool) or not isinstance(share, int | float) \
            or not math.isfinite(share) or not 0.0 <= share <= MAX_SHARE:
        raise ValueError(f"exploration_share must be a finite number in [0, {MAX_SHARE}] "
                         f"(a share of each scene's downlink bytes), got {share!r}")
    return float(share)


def scene_rng(seed: int, scene_id: str) -> np.random.Generator:
    """The exploration draw's generator for one scene: from the seed and the scene id."""
    digest = hashlib.sha256(scene_id.encode()).digest()
    return np.random.default_rng([int(seed) % 2**63, int.from_bytes(digest[:8], "big")])


def pool(c: Candidates, d: Decisions, reused: np.ndarray | None = None) -> np.ndarray:
    """Tile indices exploration draws from: accepted by ``d``, counted onboard, eligible,
    not reused."""
    ok = (d.action == ACCEPT) & c.counted & np.asarray(c.eligible, bool)
    if reused is not None:
        ok &= ~np.asarray(reused, bool)
    return np.flatnonzero(ok)


def draw(candidates: np.ndarray, sizes: np.ndarray, target: float,
         rng: np.random.Generator) -> np.ndarray:
    """Step 3: K tiles of ``candidates`` uniformly without replacement, E[K] x mean size =
    ``target`` bytes (in the order drawn)."""
    if len(candidates) == 0 or target <= 0:
        return np.zeros(0, np.int64)
    mean = float(np.mean(sizes[candidates]))
    ratio = target / max(mean, 1.0)
    k = int(math.floor(ratio)) + int(rng.random() < ratio - math.floor(ratio))
    return rng.permutation(candidates)[:min(k, len(candidates))].astype(np.int64)


def explore(c: Candidates, d: Decisions, budget: int, share: float, quality: int,
            rng: np.random.Generator, rethrottle: Rethrottle, *,
            reused: np.ndarray | None = None) -> Decisions:
    """The scene's decisions with exploration: ``d`` (the throttle's at ``budget``) when
    nothing is drawn, else the throttle's rerun at the bytes left with the drawn tiles
    downlinked at ``quality`` and flagged in ``explored``."""
    share = check_share(share)
    if quality not in c.sizes:
        raise ValueError(f"no encoded sizes for the exploration quality {quality}")
    sizes = c.sizes[quality]
    drawn = draw(pool(c, d, reused), sizes, share * budget, rng)
    chosen, spent = [], 0
    for i in drawn:  # step 4: what fits the scene's budget
        if spent + int(sizes[i]) <= budget:
            chosen.append(int(i))
            spent += int(sizes[i])
    if not chosen:
        return d
    eligible = np.asarray(c.eligible, bool).copy()
    eligible[chosen] = False
    out = rethrottle(budget - spent, eligible)
    assert not (out.action[chosen] == DOWNLINK).any()  # withheld from the value choice
    out.action[chosen] = DOWNLINK
    out.quality[chosen] = quality
    out.bytes_used = int(out.bytes_used) + spent
    explored = np.zeros(len(c), bool)
    explored[chosen] = True
    out.explored = explored
    assert out.bytes_used <= budget
    return out


def explored_bytes(d: Decisions, sizes: dict[int, np.ndarray]) -> int:
    """Bytes the decisions spend on exploration tiles (each at its quality)."""
    if d.explored is None:
        return 0
    return int(sum(int(sizes[int(d.quality[i])][i]) for i in np.flatnonzero(d.explored)))
