"""The refusal every change to a school's records raises, and reading a UID for one.

Apart from :mod:`sync_server.records` so that :mod:`sync_server.bracelet_inventory`, which
``records`` re-exports, can use them without a circular import.
"""

from __future__ import annotations

from shared.ids import normalize_uid


class RecordError(ValueError):
    """A change that would break a rule (e.g. an active bracelet on two wallets)."""


def parse_uid(raw: str) -> str:
    """A bracelet UID as stored (``normalize_uid``), or RecordError saying what is wrong."""
    try:
        return normalize_uid(raw)
    except ValueError as exc:
        raise RecordError(str(exc)) from None
