"""Counting failed attempts per client address in a sliding window (device enrollment).

In memory, per server process: enough to make guessing a 59-bit enrollment code hopeless from
one address. Several processes behind a balancer each keep their own count, which multiplies
the allowance by the process count; see docs/server.md. Admin logins are limited in the
database instead, where every process and host shares the count (admin/lockout.py).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from collections.abc import Callable

# Keys held before fail() drops the ones whose failures have all left the window; the next
# sweep waits until the dict has doubled, so sweeping stays O(1) per failure on average.
SWEEP_AT = 1024


class FailureLimiter:
    def __init__(self, limit: int, window_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window_s, self._clock = limit, window_s, clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._sweep_at = SWEEP_AT

    def retry_after(self, key: str) -> int | None:
        """Seconds to wait when ``key`` has used up its failures, else None."""
        now = self._clock()
        failures = self._failures.get(key)
        if not failures:
            return None
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if len(failures) < self.limit:
            if not failures:
                del self._failures[key]
            return None
        return max(1, math.ceil(failures[0] + self.window_s - now))

    def fail(self, key: str) -> None:
        now = self._clock()
        self._failures[key].append(now)
        if len(self._failures) >= self._sweep_at:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        """Forget keys with no failure inside the window (a key that failed once and never
        came back would otherwise stay forever). retry_after would drop those failures anyway,
        so no decision changes."""
        cutoff = now - self.window_s
        for key in [k for k, f in self._failures.items() if not f or f[-1] <= cutoff]:
            del self._failures[key]
        self._sweep_at = max(SWEEP_AT, 2 * len(self._failures))
