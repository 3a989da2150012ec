"""Retry delays for an unreachable server: exponential with full jitter.

Full jitter (a uniform draw between 0 and the exponential ceiling) spreads out the terminals
of a whole school that lost the network at the same moment, so they do not all hit the server
in lock-step when it comes back.
"""

from __future__ import annotations

import random

from terminal.settings import BACKOFF_BASE_S, BACKOFF_CAP_S


class Backoff:
    def __init__(self, base: float = BACKOFF_BASE_S, cap: float = BACKOFF_CAP_S,
                 rng: random.Random | None = None) -> None:
        if base <= 0 or cap < base:
            raise ValueError("need 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self, retry_after: float | None = None) -> float:
        """Seconds to wait after one more failure; a server's ``Retry-After`` is a floor."""
        self.failures += 1
        ceiling = min(self.cap, self.base * 2 ** min(self.failures - 1, 30))
        delay = self._rng.uniform(0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.cap))
        return delay

    def reset(self) -> None:
        self.failures = 0
