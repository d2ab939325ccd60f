"""Bandwidth-aware throttling: which tiles go down in a contact window (TargetFuse Alg. 2).

Input: per tile the onboard count and calibrated confidence (NaN when energy ran out before
the tile was counted), the encoded size of the tile at each offered JPEG quality, and which
tiles may go down at all (all of them by default). The tiles may come from several scenes:
a contact window's budget is planned over everything waiting for it. Output: per tile an
action (ACCEPT the onboard count, DOWNLINK at a quality, DISCARD, or UNCOUNTED) such that the
downlinked bytes never exceed the window's budget. Tiles that do not fit are skipped
and smaller ones still packed (first fit), in every policy.

Policies (``POLICIES``; ``throttle`` runs one by name):

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
* ``value`` (``value_policy``): the expected error reduction per downlinked byte, a
  multiple-choice knapsack over tiles and JPEG qualities, with the error model of
  ``error_model``.
* ``onboard-only``, ``random``, ``vanilla`` (``baselines``): what every result is compared
  with.

The per-tile actions and the helpers the policies share are in ``decisions``.
"""

from __future__ import annotations

import numpy as np

from shared.pipeline.baselines import onboard_only, random_policy, vanilla
from shared.pipeline.decisions import (
    Candidates,
    Decisions,
    base_decisions,
    by_confidence,
    check_budget,
    pack,
)
from shared.pipeline.selection import ACCEPT, DISCARD, check_thresholds, select
from shared.pipeline.value_policy import value_policy


def low_conf_first(c: Candidates, budget: int, quality: int, conf_p: float = 0.0,
                   fixed_conf_q: float | None = None, **_) -> Decisions:
    action, q = base_decisions(c)
    band = select(c.confidence, conf_p, max(conf_p, fixed_conf_q or conf_p))
    action[band == DISCARD] = DISCARD
    pool = np.flatnonzero((band != DISCARD) & c.eligible)
    used = pack(by_confidence(c, pool), c.sizes[quality], budget, action, q, quality)
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
    action, q = base_decisions(c)
    size = c.sizes[quality]
    band = select(c.confidence, conf_p, conf_q)
    action[band == DISCARD] = DISCARD
    conf = np.nan_to_num(np.asarray(c.confidence, float), nan=-1.0)
    live = (band != DISCARD) & c.eligible
    # Tiles ordered by confidence; the band is a prefix of the live ones, cut at conf_q.
    order = by_confidence(c, np.flatnonzero(live))
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
    used = pack(band_tiles, size, budget, action, q, quality)
    used += pack(order[k:], size, budget - used, action, q, quality)
    return Decisions(action, q, used, q_eff)


POLICIES = {
    "onboard-only": onboard_only,
    "low-conf-first": low_conf_first,
    "fixed-conf": fixed_conf,
    "dynamic-conf": dynamic_conf,
    "value": value_policy,
    "random": random_policy,
    "vanilla": vanilla,
    "vanilla-resized": vanilla,
}
PAPER_POLICIES = ("low-conf-first", "fixed-conf", "dynamic-conf")
# The bent pipes: nothing counted onboard; "vanilla" sends native tiles, "vanilla-resized"
# resizes them to the counter's input first (what a bent pipe that knows the counter's GSD
# would send), so the two differ only in bytes per tile.
BENT_PIPES = ("vanilla", "vanilla-resized")


def throttle(policy: str, c: Candidates, budget: float, quality: int, **params) -> Decisions:
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; one of {sorted(POLICIES)}")
    if quality not in c.sizes:
        raise ValueError(f"no encoded sizes for JPEG quality {quality}")
    decisions = POLICIES[policy](c, check_budget(budget), quality, **params)
    assert decisions.bytes_used <= budget
    return decisions
