"""School-local days and hours of stored UTC moments, computed in SQL on both databases.

SQLite has no time zones, and PostgreSQL's ``AT TIME ZONE`` would need the zone name bound
into every row's expression; both instead get epoch seconds plus the school's UTC offset.
Where the offset changes within a period (summer time), a CASE picks the offset in force at
each moment, so a sale at 12:10 local counts at 12 on both sides of the change. Saudi Arabia
has one offset all year: there the CASE is a single literal.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from .periods import Period


def offsets(period: Period) -> list[tuple[datetime, int]]:
    """``[(from, offset_seconds), ...]``: the school's UTC offsets in force from each instant,
    across the period; transitions are found to the minute by bisection."""
    tz = ZoneInfo(period.timezone)

    def off(at: datetime) -> int:
        delta = at.astimezone(tz).utcoffset()
        return int(delta.total_seconds()) if delta else 0

    spans = [(period.start, off(period.start))]
    at = period.start
    while at < period.end:
        nxt = min(at + timedelta(days=1), period.end)
        if off(nxt) != spans[-1][1]:
            lo, hi = at, nxt
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                lo, hi = (mid, hi) if off(mid) == spans[-1][1] else (lo, mid)
            spans.append((hi.replace(second=0, microsecond=0, tzinfo=UTC), off(hi)))
        at = nxt
    return spans


def epoch(column: Any, dialect: str) -> Any:
    if dialect == "sqlite":
        return sa.cast(sa.func.strftime("%s", column), sa.BigInteger)
    return sa.cast(sa.func.floor(sa.extract("epoch", column)), sa.BigInteger)


def offset(column: Any, period: Period) -> Any:
    """The school's UTC offset in seconds at ``column``'s moment, as SQL."""
    spans = offsets(period)
    if len(spans) == 1:
        return sa.literal(spans[0][1])
    return sa.case(*((column < spans[i + 1][0], spans[i][1]) for i in range(len(spans) - 1)),
                   else_=spans[-1][1])


def local_hour(column: Any, period: Period, dialect: str) -> Any:
    """The local hour of the day (0-23) of ``column``'s moment."""
    local = epoch(column, dialect) + offset(column, period)
    # Seconds into the local day, also before 1970 (a till's clock at year 1: both databases'
    # % keeps the dividend's sign), then whole hours by integer division.
    seconds = ((local % 86400) + 86400) % 86400
    return seconds // 3600


def local_day(column: Any, period: Period, dialect: str) -> Any:
    """``YYYY-MM-DD`` of ``column``'s moment in the school's time zone."""
    local = epoch(column, dialect) + offset(column, period)
    if dialect == "sqlite":
        return sa.func.date(local, "unixepoch")
    return sa.func.to_char(sa.func.to_timestamp(local).op("AT TIME ZONE")("UTC"), "YYYY-MM-DD")
