"""Identifiers: time-ordered sale references and safe display of bracelet UIDs.

Sale refs are UUIDv7 so that the server's unique index on refs stays append-only (the spec
recommends it). Bracelet UIDs are personal identifiers; logs and errors show them masked.
"""

from __future__ import annotations

import re

import uuid_utils

UID_PATTERN = re.compile(r"^[0-9A-F]{8,20}$")


def new_ref() -> str:
    """A new sale reference: a UUIDv7 string, unique without coordination."""
    return str(uuid_utils.uuid7())


def new_id(prefix: str) -> str:
    """An opaque, time-ordered ID with a short prefix saying what it names (``wal_…``)."""
    return f"{prefix}_{uuid_utils.uuid7().hex}"


def normalize_uid(raw: str) -> str:
    """Reader output to the wire form: upper-case hex, no separators.

    Readers disagree on case and separators (``04:a1:b2``, ``04 A1 B2``); the wire and the
    snapshot only ever hold one form. Raises ValueError for anything that is not a UID.
    """
    cleaned = re.sub(r"[\s:\-]", "", raw).upper()
    if not UID_PATTERN.fullmatch(cleaned) or len(cleaned) % 2:
        raise ValueError("not a bracelet UID (expected 4 to 10 bytes of hex)")
    return cleaned


def mask_uid(uid: str | None) -> str:
    """``04A1B2C3D4E580`` -> ``04A1…E580``: enough to tell bracelets apart, not to clone one."""
    if not uid:
        return "-"
    if len(uid) <= 8:
        return uid[:2] + "…" + uid[-2:]
    return uid[:4] + "…" + uid[-4:]
