"""Tap de-duplication: one physical tap must never charge twice.

Readers promise one event per tap, but cheap readers, a bracelet held at the edge of the
field, or a keyboard wedge that repeats itself can report the same UID again a few hundred
milliseconds later. If the cart for the next student is already filled by then, a second read
would charge the wrong sale. So a UID read again within ``window_s`` of its previous read is
ignored; another bracelet is never held up. It lives here (no Qt, no I/O) so the rule is the
same whatever screen or command drives the sale, and it is tested with a fake clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

DEDUP_WINDOW_S = 1.0


class TapGuard:
    def __init__(self, window_s: float = DEDUP_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._last_seen: dict[str, float] = {}

    def admit(self, uid: str) -> bool:
        """True when this read is a new tap; False for a repeat of the same bracelet.

        The window slides: a bracelet that keeps being re-read stays ignored until it has
        been away for a whole window.
        """
        now = self._clock()
        key = uid.strip().upper()
        last = self._last_seen.get(key)
        self._last_seen[key] = now
        # Forget old entries so a long service does not grow the dict without bound.
        if len(self._last_seen) > 256:
            self._last_seen = {k: t for k, t in self._last_seen.items()
                               if now - t <= self.window_s}
        return last is None or now - last > self.window_s
