"""Contact windows: when the satellite can talk to the ground station.

Either periodic (every ``period_s`` seconds a pass of ``duration_s`` seconds, the first one
starting at ``offset_s`` after the epoch) or an explicit schedule of (start, end) times in
seconds since the epoch. ``always()`` is a link that never closes. The throttle plans each
window with the bytes it can carry: ``bytes_left(t, rate)``, or with every window within a
horizon: ``bytes_within(t, horizon, rate)``.

Explicit windows may each name their ground station and carry their own rate (a contact
plan computed from orbits, ``shared/orbits``: ``from_plan``); a window without a rate of
its own carries the rate it is asked about. ``window(t)`` says which window is open, with
whom and at what rate.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import NamedTuple

# A bound on the windows one horizon sums (a short period and a long horizon would
# otherwise loop for long): about a year of passes every 15 minutes.
MAX_HORIZON_WINDOWS = 40_000


class Window(NamedTuple):
    start: float
    end: float
    station: str | None = None
    rate_bytes_s: float | None = None  # None: the link's configured rate


@dataclass(frozen=True)
class ContactSchedule:
    period_s: float | None = None
    duration_s: float | None = None
    offset_s: float = 0.0
    windows: tuple[tuple[float, float], ...] = ()
    # Per explicit window, in the same order (empty: none named, the configured rate).
    stations: tuple[str | None, ...] = ()
    rates: tuple[float | None, ...] = ()

    def __post_init__(self) -> None:
        # Looked up by bisection: a day's plan has hundreds of windows. (Frozen: set by hand.)
        object.__setattr__(self, "_starts", [w[0] for w in self.windows])
        for name, values in (("stations", self.stations), ("rates", self.rates)):
            if values and len(values) != len(self.windows):
                raise ValueError(f"{name} must give one value per window: {len(values)} "
                                 f"for {len(self.windows)} windows")
        for r in self.rates:
            if r is not None and not (math.isfinite(r) and r > 0):
                raise ValueError(f"a window's rate must be > 0 bytes/s, got {r}")
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

    @classmethod
    def from_plan(cls, windows, shift_s: float = 0.0) -> ContactSchedule:
        """One radio's windows of a contact plan (``shared.orbits.plan.single_radio``),
        each with its station and mean rate, moved by ``shift_s`` seconds."""
        if not windows:
            raise ValueError("the contact plan has no window for this satellite")
        return cls(windows=tuple((w.start + shift_s, w.end + shift_s) for w in windows),
                   stations=tuple(w.station for w in windows),
                   rates=tuple(w.rate_bytes_s for w in windows))

    def _index(self, t: float) -> int | None:
        # Sorted, non-overlapping windows: the last one starting at or before t.
        i = bisect.bisect_right(self._starts, t) - 1
        return i if i >= 0 and t < self.windows[i][1] else None

    def window(self, t: float) -> Window | None:
        """The window open at t with its station and rate (None where not given), or
        None when closed."""
        if self.windows:
            i = self._index(t)
            if i is None:
                return None
            return Window(*self.windows[i], self.stations[i] if self.stations else None,
                          self.rates[i] if self.rates else None)
        w = self.current(t)
        return None if w is None else Window(*w)

    @property
    def unlimited(self) -> bool:
        """Never closes (no windows, no period)."""
        return not self.windows and self.period_s is None

    def current(self, t: float) -> tuple[float, float] | None:
        """The window open at time t, as (start, end), or None."""
        if self.windows:
            i = self._index(t)
            return None if i is None else (self.windows[i][0], self.windows[i][1])
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
            i = bisect.bisect_right(self._starts, t)
            return self._starts[i] if i < len(self._starts) else None
        k = math.floor((t - self.offset_s) / self.period_s) + 1
        return self.offset_s + k * self.period_s

    def bytes_left(self, t: float, rate_bytes_s: float) -> float:
        """What the link can still carry in the window open at t (0 when closed), at the
        window's own rate where it has one, else at ``rate_bytes_s``."""
        w = self.window(t)
        if w is None:
            return 0.0
        return max(0.0, (w.end - t) * (w.rate_bytes_s or rate_bytes_s))

    def bytes_within(self, t: float, horizon_s: float, rate_bytes_s: float) -> float:
        """What the link can carry from t in the window open at t (or the next one) and in
        every later window that opens before ``t + horizon_s``: the windows a scene planned
        now will get within that horizon. A horizon of 0 is the first window alone."""
        first = self.next_open(t)
        if first is None:
            return 0.0
        total, at = self.bytes_left(first, rate_bytes_s), first
        for _ in range(MAX_HORIZON_WINDOWS):
            w = self.window(at)
            nxt = self.next_open(w.end) if w is not None and math.isfinite(w.end) else None
            if nxt is None or nxt >= t + horizon_s or nxt <= at:
                return total
            total += self.bytes_left(nxt, rate_bytes_s)
            at = nxt
        return total
