"""Energy: a per-orbit budget that counting and downlinking draw from.

The TargetFuse design splits a satellite's energy for counting into four parts:

* ``E_cap``: capturing the scene (per megapixel read off the sensor);
* ``E_com``: counting, FLOPs of the onboard counter x joules per FLOP;
* ``E_agg``: aggregating the results (per tile; a few hundred arithmetic operations);
* ``E_down``: downlinking, radio power x transmit time = power x bytes x 8 / bit rate.

Counting and downlinking dominate (> 60 % in the paper's measurements of an in-orbit
satellite). The default constants describe a small EO satellite:

* ``j_per_flop = 5e-10`` J/FLOP: a Cortex-A class flight computer sustaining ~2 GFLOP/s per
  watt on a DNN (int8 on a CPU; a GPU SoC would be ~10x better);
* ``radio_w = 10`` W drawn by an X-band transmitter at ``downlink_bps = 100e6`` bit/s, i.e.
  0.8 uJ per byte;
* ``capture_j_per_mpx = 0.01`` J per megapixel (sensor and its read-out electronics);
* ``aggregate_j_per_tile = 1e-6`` J (negligible, as in the paper).

With these, counting a 256x256 input with the shipped shallow counter (338 MFLOPs) costs
0.17 J and sending a 80 kB tile 0.064 J. Where these sit among published flight-computer,
edge-accelerator and small-satellite radio figures, with sources: ``docs/EXPERIMENTS.md``.
:class:`EnergyLedger` holds a budget and refuses any spend that would exceed it, so the
onboard side never overdraws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class EnergyModel:
    j_per_flop: float = 5e-10
    radio_w: float = 10.0
    downlink_bps: float = 100e6
    capture_j_per_mpx: float = 0.01
    aggregate_j_per_tile: float = 1e-6

    def __post_init__(self) -> None:
        for name in ("j_per_flop", "radio_w", "downlink_bps", "capture_j_per_mpx",
                     "aggregate_j_per_tile"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"energy constant {name} must be a finite number >= 0, "
                                 f"got {value!r}")
        if self.downlink_bps <= 0:
            raise ValueError(f"downlink_bps must be > 0, got {self.downlink_bps}")

    def capture(self, width: int, height: int) -> float:
        return self.capture_j_per_mpx * width * height / 1e6

    def compute(self, flops: float, inferences: int = 1) -> float:
        return self.j_per_flop * flops * inferences

    def aggregate(self, tiles: int) -> float:
        return self.aggregate_j_per_tile * tiles

    def downlink(self, n_bytes: float) -> float:
        return self.radio_w * 8.0 * n_bytes / self.downlink_bps

    def bytes_for(self, joules: float) -> int:
        """The most bytes ``joules`` can send."""
        return max(0, int(joules * self.downlink_bps / (8.0 * self.radio_w))) \
            if self.radio_w > 0 else 2**62

    def full_onboard(self, width: int, height: int, tiles: int, flops: float) -> float:
        """What counting every tile of a scene onboard costs: the reference for fractions."""
        return self.capture(width, height) + self.compute(flops, tiles) + self.aggregate(tiles)


class EnergyExceeded(RuntimeError):
    """A spend would overdraw the energy budget."""


@dataclass
class EnergyLedger:
    budget_j: float
    spent: dict[str, float] = field(default_factory=lambda: {
        "capture": 0.0, "compute": 0.0, "aggregate": 0.0, "downlink": 0.0})

    def __post_init__(self) -> None:
        if not (math.isfinite(self.budget_j) and self.budget_j >= 0):
            raise ValueError(f"energy budget must be a finite number >= 0, got {self.budget_j}")

    @property
    def total(self) -> float:
        return sum(self.spent.values())

    @property
    def remaining(self) -> float:
        return max(0.0, self.budget_j - self.total)

    def can_afford(self, joules: float) -> bool:
        return joules <= self.remaining + 1e-12

    def spend(self, kind: str, joules: float) -> None:
        if kind not in self.spent:
            raise ValueError(f"unknown energy kind {kind!r}; one of {sorted(self.spent)}")
        if not self.can_afford(joules):
            raise EnergyExceeded(f"{kind} needs {joules:.4g} J, {self.remaining:.4g} J left")
        self.spent[kind] += joules

    def report(self) -> dict[str, float]:
        return {**{k: round(v, 6) for k, v in self.spent.items()},
                "total": round(self.total, 6), "budget": round(self.budget_j, 6)}
