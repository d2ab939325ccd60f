"""What throttling decides for each tile, and the helpers every policy shares.

Actions: ACCEPT the onboard count and DISCARD (selection's bands), UNCOUNTED (energy ran
out before the tile was counted, and it does not go down), DOWNLINK (at a JPEG quality).
``Candidates`` is what a policy is given per tile, ``Decisions`` what it answers; a policy
never downlinks more bytes than its budget (``pack``: first fit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from shared.pipeline.selection import ACCEPT, DISCARD

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
    # (n,) bool: downlinked as exploration (``exploration``), not by the policy; None: none
    explored: np.ndarray | None = None

    def names(self) -> list[str]:
        return [ACTION_NAMES[int(a)] for a in self.action]

    def is_explored(self, i: int) -> bool:
        return self.explored is not None and bool(self.explored[i])


def check_budget(budget: float) -> int:
    if not (isinstance(budget, int | float) and math.isfinite(budget) and budget >= 0):
        raise ValueError(f"downlink budget must be a number of bytes >= 0, got {budget!r}")
    return int(budget)


def pack(order, sizes: np.ndarray, budget: int, action: np.ndarray, quality: np.ndarray,
         q: int) -> int:
    """First fit in ``order``: downlink each tile that still fits. Returns bytes used."""
    used = 0
    for i in order:
        if used + sizes[i] <= budget:
            used += int(sizes[i])
            action[i] = DOWNLINK
            quality[i] = q
    return used


def base_decisions(c: Candidates) -> tuple[np.ndarray, np.ndarray]:
    action = np.where(c.counted, ACCEPT, UNCOUNTED).astype(np.int8)
    return action, np.zeros(len(c), np.int16)


def by_confidence(c: Candidates, idx: np.ndarray) -> np.ndarray:
    # Uncounted tiles first (nothing is known about them), then ascending confidence.
    conf = np.nan_to_num(np.asarray(c.confidence, float)[idx], nan=-1.0)
    return idx[np.argsort(conf, kind="stable")]
