"""Times on the wire are RFC 3339 with an explicit offset; these helpers produce them."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """Millisecond precision with an explicit offset (``Z`` is never used: the spec's examples
    carry ``+03:00`` style offsets and some parsers in the field only accept that form)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: every time on the wire carries an offset")
    return moment.isoformat(timespec="milliseconds")
