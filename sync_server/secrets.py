"""Hashing of every secret the server stores.

Device tokens and enrollment codes are long random strings, so a fast keyed-free SHA-256 is
enough (no dictionary to attack) and keeps every device request to one indexed lookup. Admin
passwords and cashier PINs are chosen by people: argon2id. PIN hashes get their own, costlier
parameters, because every till holds all of them (see ``hash_pin``).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
T = TypeVar("T")
# Argon2 is tens of milliseconds of CPU and 64-128 MiB per call, on purpose. On the event loop,
# one admin login held every request of its worker that long: the eight admin logins at the
# start of a 500-till fleet run stalled pushes for 1.6 s (benchmarks/fleet.py, 2026-11-28).
# One thread of its own per worker rather than the default executor: a burst of logins (or an
# attacker's) waits its turn instead of taking the cores from the tills, and holds one hash's
# memory at a time, not six.
# Created lazily by the executor on first use, so only after gunicorn has forked the worker.
_HASHING = ThreadPoolExecutor(max_workers=1, thread_name_prefix="argon2")
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


async def off_loop(work: Callable[..., T], *args: object) -> T:
    """``work(*args)`` (one of the argon2 functions here) on the hashing threads."""
    return await asyncio.get_running_loop().run_in_executor(_HASHING, work, *args)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_password() -> str:
    return secrets.token_urlsafe(12)


# Cashier PIN hashes travel to every till in the snapshot and sit in its terminal.db, where
# whoever copies the file can guess offline with no lockout: a PIN has only 10^4 or 10^6
# values, so the hash's cost (and 6 digits rather than 4) is the whole defence. These
# parameters cost about 1.5x the CPU of the argon2-cffi defaults (64 MiB, t=3, p=4) per guess
# and twice the memory, about 250 ms of CPU per check, which p=2 splits over a till's two
# cores (benchmarks/pin_bruteforce.py; the figures are in docs/terminal.md). Tills verify any
# argon2 parameters, so hashes made earlier keep working until the PIN is next set.
PIN_TIME_COST = 2
PIN_MEMORY_KIB = 128 * 1024
PIN_PARALLELISM = 2
PIN_DIGITS_DEFAULT = 6
_pin_hasher = PasswordHasher(time_cost=PIN_TIME_COST, memory_cost=PIN_MEMORY_KIB,
                             parallelism=PIN_PARALLELISM)


def hash_pin(pin: str) -> str:
    return _pin_hasher.hash(pin)


def pin_hash_outdated(pin_hash: str) -> bool:
    """True for a hash made with other parameters than today's (or not argon2id at all):
    the console asks for a new PIN, since only setting the PIN again can re-hash it (the
    server never sees a PIN after it was set; tills check PINs offline)."""
    try:
        return _pin_hasher.check_needs_rehash(pin_hash)
    except (InvalidHashError, ValueError):
        return True


def new_pin() -> str:
    return f"{secrets.randbelow(10 ** PIN_DIGITS_DEFAULT):0{PIN_DIGITS_DEFAULT}d}"
