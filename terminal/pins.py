"""Cashier PIN checks against the snapshot's hash, done offline on the terminal.

The spec allows argon2 or scrypt hashes. argon2 is checked with argon2-cffi; scrypt with the
standard library, in the ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`` form.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import threading
import time
from collections.abc import Callable


def verify_pin_hash(pin_hash: str, pin: str) -> bool:
    if pin_hash.startswith("$argon2"):
        from argon2 import PasswordHasher
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            return PasswordHasher().verify(pin_hash, pin)
        except (VerificationError, InvalidHashError):
            return False
    if pin_hash.startswith("scrypt$"):
        return _verify_scrypt(pin_hash, pin)
    return False


def _verify_scrypt(pin_hash: str, pin: str) -> bool:
    try:
        _, n, r, p, salt_b64, hash_b64 = pin_hash.split("$")
        salt = base64.b64decode(salt_b64 + "=" * (-len(salt_b64) % 4))
        expected = base64.b64decode(hash_b64 + "=" * (-len(hash_b64) % 4))
        actual = hashlib.scrypt(pin.encode(), salt=salt, n=int(n), r=int(r), p=int(p),
                                dklen=len(expected), maxmem=256 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


class PinLockout(Exception):
    """Too many wrong PINs for one cashier: the words are for the login screen."""

    def __init__(self, seconds: int) -> None:
        super().__init__(f"Too many wrong PINs. Try again in {seconds} s "
                         "or ask another cashier to log in.")
        self.seconds = seconds


class PinAttempts:
    """Per-cashier lockout after repeated wrong PINs.

    A 4-digit PIN falls to 10,000 guesses; at a counter left unattended that is minutes. After
    ``free`` consecutive failures each further failure locks that cashier for ``base_s``,
    doubling up to ``max_s``; a correct PIN clears the count. Kept in memory: restarting the
    app resets it, which needs the kiosk session, not just the screen.
    """

    def __init__(self, free: int = 5, base_s: float = 30.0, max_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.free, self.base_s, self.max_s, self._clock = free, base_s, max_s, clock
        self._failures: dict[str, int] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, cashier_id: str) -> None:
        with self._lock:
            wait = self._locked_until.get(cashier_id, 0.0) - self._clock()
        if wait > 0:
            raise PinLockout(math.ceil(wait))

    def record(self, cashier_id: str, ok: bool) -> None:
        with self._lock:
            if ok:
                self._failures.pop(cashier_id, None)
                self._locked_until.pop(cashier_id, None)
                return
            count = self._failures.get(cashier_id, 0) + 1
            self._failures[cashier_id] = count
            if count >= self.free:
                delay = min(self.max_s, self.base_s * 2 ** (count - self.free))
                self._locked_until[cashier_id] = self._clock() + delay
