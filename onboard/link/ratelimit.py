"""An application-level token bucket in bytes per second, so the downlink budget holds even
where no kernel shaping (tc) is in place.

Tokens accrue at ``rate`` bytes/s up to ``burst`` bytes; sending n bytes takes n tokens,
waiting for them when short. A message larger than the burst is let through once the bucket
is full and drives it negative, so the long-run rate still holds. The clock and the sleep are
injectable (tests use a fake clock).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, rate: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"link rate must be > 0 bytes/s, got {rate}")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(rate * 0.1, 64 * 1024))
        if self.burst <= 0:
            raise ValueError(f"burst must be > 0 bytes, got {burst}")
        self.clock, self.sleep = clock, sleep
        self.tokens = self.burst
        self.last = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now

    def set_rate(self, rate: float) -> None:
        """Change the rate from now on (a contact plan's window has its own); the burst
        stays."""
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"link rate must be > 0 bytes/s, got {rate}")
        with self._lock:
            self._refill()  # what accrued so far accrued at the old rate
            self.rate = float(rate)

    def wait_time(self, n: int) -> float:
        """Seconds until n bytes may go (0: now)."""
        with self._lock:
            self._refill()
            need = min(n, self.burst)
            return max(0.0, (need - self.tokens) / self.rate)

    def consume(self, n: int) -> None:
        """Block until n bytes may go, then take them."""
        while True:
            wait = self.wait_time(n)
            if wait <= 0:
                with self._lock:
                    self._refill()
                    self.tokens -= n
                return
            self.sleep(wait)
