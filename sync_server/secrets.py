"""Hashing of every secret the server stores.

Device tokens and enrollment codes are long random strings, so a fast keyed-free SHA-256 is
enough (no dictionary to attack) and keeps every device request to one indexed lookup. Admin
passwords and cashier PINs are chosen by people: argon2id.
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Crockford-style alphabet: no 0/O or 1/I/L for codes read aloud or typed on a terminal.
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"


def new_device_token() -> str:
    return secrets.token_urlsafe(32)


def new_enrollment_code() -> str:
    """``ABCD-EFGH-JKMN``: 12 characters, about 59 bits, typed once on a terminal."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    return "-".join(raw[i:i + 4] for i in range(0, 12, 4))


def normalize_code(code: str) -> str:
    return code.strip().upper().replace(" ", "").replace("-", "")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def code_hash(code: str) -> str:
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_password() -> str:
    return secrets.token_urlsafe(12)


def new_pin() -> str:
    return f"{secrets.randbelow(10**4):04d}"
