"""Contact windows: when the satellite can talk to the ground station.

Either periodic (every ``period_s`` seconds a pass of ``duration_s`` seconds, the first one
starting at ``offset_s`` after the epoch) or an explicit schedule of (start, end) times in
seconds since the epoch. ``always()`` is a link that never closes. The throttle plans each
window with the bytes it can carry: ``bytes_left(t, rate)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ContactSchedule:
    period_s: float | None = None
    duration_s: float | None = None
    offset_s: float = 0.0
    windows: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if self.windows:
            if self.period_s is not None:
                raise ValueError("give either a periodic schedule or explicit windows, not both")
            last = -math.inf
            for start, end in self.windows:
                if not (math.isfinite(start) and math.isfinite(end) and start < end):
                    raise ValueError(f"window ({start}, {end}) must have start < end")
                if start < last:
                    raise ValueError("windows must be sorted and must not overlap")
                last = end
        elif self.period_s is not None and not (
                self.period_s > 0 and self.duration_s is not None
                and 0 < self.duration_s <= self.period_s):
            raise ValueError("a periodic schedule needs 0 < duration_s <= period_s, got "
                             f"period {self.period_s}, duration {self.duration_s}")

    @classmethod
    def always(cls) -> ContactSchedule:
        return cls()

    @property
    def unlimited(self) -> bool:
        """Never closes (no windows, no period)."""
        return not self.windows and self.period_s is None

    def current(self, t: float) -> tuple[float, float] | None:
        """The window open at time t, as (start, end), or None."""
        if self.windows:
            for start, end in self.windows:
                if start <= t < end:
                    return start, end
            return None
        if self.period_s is None:
            return (-math.inf, math.inf)
        k = math.floor((t - self.offset_s) / self.period_s)
        start = self.offset_s + k * self.period_s
        return (start, start + self.duration_s) if t < start + self.duration_s else None

    def is_open(self, t: float) -> bool:
        return self.current(t) is not None

    def next_open(self, t: float) -> float | None:
        """When the next window opens (t itself when one is open), None when none will."""
        if self.is_open(t):
            return t
        if self.windows:
            return next((s for s, _ in self.windows if s > t), None)
        k = math.floor((t - self.offset_s) / self.period_s) + 1
        return self.offset_s + k * self.period_s

    def bytes_left(self, t: float, rate_bytes_s: float) -> float:
        """What the link can still carry in the window open at t (0 when closed)."""
        w = self.current(t)
        return 0.0 if w is None else max(0.0, (w[1] - t) * rate_bytes_s)
