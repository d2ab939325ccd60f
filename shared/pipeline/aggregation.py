"""Aggregation: a scene's total from every tile's count, with each tile's provenance.

``total = accepted onboard counts + ground counts of downlinked tiles + reused counts of
deduplicated tiles + the chosen treatment of discarded and uncounted tiles``.

Provenance per tile: ``accepted`` (onboard count kept), ``downlinked`` (counted on the
ground), ``reused`` (deduplicated: a verified near-duplicate's count), ``discarded`` (below
conf_p), ``uncounted`` (energy ran out and the tile was not sent). Treatments:

* discarded tiles: ``onboard`` (add their onboard count) or ``zero`` (the paper drops them);
  the default is ``onboard``, which measures better (``docs/EXPERIMENTS.md``): a low
  confidence says the count may be off, not that it is zero.
* uncounted tiles: ``zero`` or ``context``: the mean count of the measured tiles (counted
  onboard, or counted on the ground when downlinked: the ground's count wins) of the same
  deduplication context (k-means cluster), or of the whole scene where the tile has no
  context or its context no measured tile (a bent pipe, which clusters nothing, extrapolates
  from what it sent). The pipeline's default is ``context``; every baseline family is
  reported with the same estimate and with ``zero`` (named as such).

A downlinked tile whose ground count has not arrived yet counts with its onboard count (or
zero when it has none) and the scene is reported incomplete: partial totals are visible
before the link delivers everything.

Per class (``aggregate_classes``): the same rule on each class's own tile counts; every rule
is linear in the counts, so the class totals add up to the scene's total.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from shared.pipeline.decisions import DOWNLINK, UNCOUNTED
from shared.pipeline.selection import ACCEPT, DISCARD

PROVENANCE = ("accepted", "downlinked", "reused", "discarded", "uncounted")
Discarded = Literal["onboard", "zero"]
Uncounted = Literal["zero", "context"]
DISCARD_TREATMENTS: tuple[str, ...] = get_args(Discarded)
UNCOUNTED_TREATMENTS: tuple[str, ...] = get_args(Uncounted)


@dataclass
class SceneTotal:
    total: float
    complete: bool
    by_provenance: dict[str, float]  # provenance -> summed count
    tiles_by_provenance: dict[str, int]
    provenance: list[str]  # per tile
    tile_counts: np.ndarray  # per tile, the count that entered the total

    def as_dict(self) -> dict:
        return {"total": round(self.total, 3), "complete": self.complete,
                "by_provenance": {k: round(v, 3) for k, v in self.by_provenance.items()},
                "tiles_by_provenance": self.tiles_by_provenance}


def check_treatments(discarded: str, uncounted: str) -> None:
    if discarded not in DISCARD_TREATMENTS:
        raise ValueError(f"discarded-tile treatment must be one of {DISCARD_TREATMENTS}, "
                         f"got {discarded!r}")
    if uncounted not in UNCOUNTED_TREATMENTS:
        raise ValueError(f"uncounted-tile treatment must be one of {UNCOUNTED_TREATMENTS}, "
                         f"got {uncounted!r}")


@dataclass(frozen=True)
class AggregationRules:
    """How a scene's total treats the tiles nobody counted for it: what the simulator reads
    from a ``PipelineConfig`` and the ground from its settings. The defaults are the
    pipeline's (and the ground's)."""

    discarded: Discarded = "onboard"
    uncounted: Uncounted = "context"

    def __post_init__(self) -> None:
        check_treatments(self.discarded, self.uncounted)


DEFAULT_RULES = AggregationRules()


def aggregate(action: np.ndarray, onboard: np.ndarray, reused: np.ndarray,
              ground: dict[int, float], contexts: np.ndarray | None = None,
              discarded: str = "onboard", uncounted: str = "zero") -> SceneTotal:
    """``action``: throttling's per-tile action; ``onboard``: onboard (or reused) counts, NaN
    where none; ``reused``: bool per tile; ``ground``: tile index -> ground count received."""
    check_treatments(discarded, uncounted)
    action = np.asarray(action)
    onboard = np.asarray(onboard, float)
    n = len(action)
    counts = np.zeros(n)
    prov: list[str] = []
    complete = True
    for i in range(n):
        a = int(action[i])
        known = 0.0 if np.isnan(onboard[i]) else onboard[i]
        if a == DOWNLINK:
            prov.append("downlinked")
            if i in ground:
                counts[i] = ground[i]
            else:
                counts[i], complete = known, False
        elif a == ACCEPT:
            prov.append("reused" if reused[i] else "accepted")
            counts[i] = known
        elif a == DISCARD:
            prov.append("discarded")
            counts[i] = known if discarded == "onboard" else 0.0
        elif a == UNCOUNTED:
            prov.append("uncounted")
        else:
            raise ValueError(f"tile {i}: unknown action {a}")
    if uncounted == "context":
        _extrapolate(counts, action, onboard, ground, contexts)
    by = {p: 0.0 for p in PROVENANCE}
    tiles = {p: 0 for p in PROVENANCE}
    for p, c in zip(prov, counts, strict=True):
        by[p] += float(c)
        tiles[p] += 1
    return SceneTotal(float(counts.sum()), complete, by, tiles, prov, counts)


def _extrapolate(counts: np.ndarray, action: np.ndarray, onboard: np.ndarray,
                 ground: dict[int, float], contexts: np.ndarray | None) -> None:
    """Fill uncounted tiles' counts with their context's (else the scene's) measured mean."""
    measured = np.full(len(action), np.nan)
    known = ~np.isnan(onboard)
    measured[known] = onboard[known]
    for i, v in ground.items():
        if action[i] == DOWNLINK:
            measured[i] = v
    measured[action == UNCOUNTED] = np.nan
    have = ~np.isnan(measured)
    if not have.any():
        return
    scene_mean = float(measured[have].mean())
    for i in np.flatnonzero(action == UNCOUNTED):
        same = have & (contexts == contexts[i]) if contexts is not None else None
        counts[i] = float(measured[same].mean()) if same is not None and same.any() \
            else scene_mean


def aggregate_classes(classes: list[str], action: np.ndarray, class_onboard: np.ndarray,
                      reused: np.ndarray, class_ground: dict[int, list[float]],
                      contexts: np.ndarray | None = None, *, discarded: str = "onboard",
                      uncounted: str = "zero") -> dict[str, SceneTotal]:
    """``class_onboard``: (tiles, classes) onboard counts, NaN where none; ``class_ground``:
    tile index -> the ground's count per class. One :class:`SceneTotal` per class."""
    class_onboard = np.asarray(class_onboard, float).reshape(len(action), -1)
    if class_onboard.shape[1] != len(classes):
        raise ValueError(f"{class_onboard.shape[1]} class columns for classes {classes}")
    return {name: aggregate(action, class_onboard[:, k], reused,
                            {i: float(v[k]) for i, v in class_ground.items()}, contexts,
                            discarded, uncounted)
            for k, name in enumerate(classes)}
