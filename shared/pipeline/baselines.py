"""The baselines every result is reported beside, as throttling policies.

* ``onboard-only``: nothing goes down; every counted tile is accepted.
* ``random``: counted tiles go down in a seeded random order until the budget is spent; the
  rest are accepted (selection at equal budget with no knowledge).
* ``vanilla``: the bent pipe: no onboard counting; tiles go down in capture order until the
  budget is spent; the rest stay uncounted (``vanilla-resized``: the same, tiles resized to
  the counter's input).

``BASELINES`` names each baseline run an experiment reports, as a policy and the settings it
changes in the collaborative run's; ``FAMILIES`` groups them.
"""

from __future__ import annotations

import numpy as np

from shared.pipeline.decisions import (
    DOWNLINK,
    UNCOUNTED,
    Candidates,
    Decisions,
    base_decisions,
    pack,
)


def onboard_only(c: Candidates, budget: int, quality: int, **_) -> Decisions:
    action, q = base_decisions(c)
    return Decisions(action, q, 0)


def random_policy(c: Candidates, budget: int, quality: int, seed: int = 0, **_) -> Decisions:
    action, q = base_decisions(c)
    pool = np.flatnonzero(c.eligible)
    order = np.random.default_rng(seed).permutation(pool)
    used = pack(order, c.sizes[quality], budget, action, q, quality)
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


# Every baseline, by name: its policy and what it changes in the collaborative run's
# settings. Each family is run in its strongest fair form (the same estimate for tiles
# nobody counted as the collaborative run, the same tiling and deduplication where the
# baseline counts onboard) and in the paper's form, named ``-zero`` (natural tiles, no
# deduplication, a tile nobody counted adds nothing). Ratios are taken against the strongest
# member of each family at each point (``strongest``).
_PLAIN = {"dedup": False, "adaptive_tiling": False}
BASELINES: dict[str, tuple[str, dict]] = {
    "random": ("random", {}),
    "onboard-only": ("onboard-only", {}),
    "onboard-only-zero": ("onboard-only", {**_PLAIN, "uncounted": "zero"}),
    # A bent pipe always extrapolates the tiles it could not send from those it sent (the
    # strongest estimate it has), whatever the collaborative run does with its own.
    "vanilla": ("vanilla", {**_PLAIN, "uncounted": "context"}),  # native tiles
    "vanilla-resized": ("vanilla-resized", {**_PLAIN, "uncounted": "context"}),
    "vanilla-zero": ("vanilla", {**_PLAIN, "uncounted": "zero"}),
}
FAMILIES = {"onboard-only": ("onboard-only", "onboard-only-zero"),
            "vanilla": ("vanilla", "vanilla-resized", "vanilla-zero"),
            "random": ("random",)}
