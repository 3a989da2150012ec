"""Cashier PIN checks against the snapshot's hash, done offline on the terminal.

The spec allows argon2 or scrypt hashes. argon2 is checked with argon2-cffi; scrypt with the
standard library, in the ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`` form.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


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
