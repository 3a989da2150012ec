"""Report periods: presets and custom ranges, as school days and as UTC instants.

Reports ask two things of a period: which school days it covers (sales carry their
school-local ``business_day``), and where it starts and ends in UTC (for rows that carry only
a timestamp: money operations, payments, postings). Both come from the school's time zone
(``schools.timezone``), never the server's, so "today" at 00:30 in Riyadh is the Riyadh day
even though UTC is still on yesterday.

Weeks start on Sunday (:data:`WEEK_START`): Saudi schools run Sunday to Thursday, and an ISO
week (Monday start) would split every school week in two. It is one constant here, not a
school setting, until a school elsewhere needs another start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

PRESETS = ("today", "yesterday", "this_week", "this_month", "last_month", "custom")
DEFAULT_PRESET = "today"
WEEK_START = 6  # date.weekday() of the first day of a school week: Sunday
MAX_DAYS = 400  # a custom range longer than this is refused: a year and a bit, for year-end


class PeriodError(ValueError):
    """A custom range that cannot be reported on; ``words`` are shown to the person (the
    console answers 400 with them)."""

    def __init__(self, code: str, words: str) -> None:
        super().__init__(words)
        self.code, self.words = code, words


@dataclass(frozen=True, slots=True)
class Period:
    """School days ``first`` to ``last`` inclusive; ``start``/``end`` the UTC instants of the
    first day's local midnight and the midnight after the last day (end exclusive)."""

    preset: str
    first: date
    last: date
    timezone: str
    start: datetime
    end: datetime

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def first_day(self) -> str:
        """``YYYY-MM-DD``, comparable with ``sales.business_day``."""
        return self.first.isoformat()

    @property
    def last_day(self) -> str:
        return self.last.isoformat()

    def each_day(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range(self.days)]


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which ``day`` begins where the school is. Saudi Arabia has no DST;
    elsewhere a day may be 23 or 25 hours long, and this stays right because each midnight is
    converted on its own."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def day_period(day: date, timezone: str, preset: str = "custom") -> Period:
    return make(preset, day, day, timezone)


def make(preset: str, first: date, last: date, timezone: str) -> Period:
    tz = ZoneInfo(timezone)
    return Period(preset, first, last, timezone, local_midnight(first, tz),
                  local_midnight(last + timedelta(days=1), tz))


def today_in(timezone: str, now: datetime) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


def resolve(preset: str, timezone: str, now: datetime, *, first: date | None = None,
            last: date | None = None) -> Period:
    """The period a preset names at ``now`` (aware), or a custom ``first``..``last``."""
    today = today_in(timezone, now)
    if preset == "today":
        return make(preset, today, today, timezone)
    if preset == "yesterday":
        day = today - timedelta(days=1)
        return make(preset, day, day, timezone)
    if preset == "this_week":
        start = today - timedelta(days=(today.weekday() - WEEK_START) % 7)
        return make(preset, start, today, timezone)
    if preset == "this_month":
        return make(preset, today.replace(day=1), today, timezone)
    if preset == "last_month":
        end = today.replace(day=1) - timedelta(days=1)
        return make(preset, end.replace(day=1), end, timezone)
    if preset == "custom":
        return custom(first, last, timezone)
    raise PeriodError("unknown_preset", f"unknown period {preset[:40]!r}")


def custom(first: date | None, last: date | None, timezone: str) -> Period:
    if first is None or last is None:
        raise PeriodError("range_incomplete", "a custom period needs a first and a last day")
    if last < first:
        raise PeriodError("range_reversed", "the last day is before the first day")
    if (last - first).days + 1 > MAX_DAYS:
        raise PeriodError("range_too_long",
                          f"a period is at most {MAX_DAYS} days; choose a shorter range")
    return make("custom", first, last, timezone)


def parse_date(value: str | None) -> date | None:
    """``YYYY-MM-DD`` or None; days in the calendar's first and last years are refused
    (their local midnights fall outside what Python and the databases hold)."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise PeriodError("bad_date", f"{value[:20]!r} is not a date (YYYY-MM-DD)") from None
    if not 1 < day.year < 9999:
        raise PeriodError("bad_date", f"{value[:20]!r} is out of range")
    return day


def from_query(query: Mapping[str, str], timezone: str, now: datetime) -> Period:
    """``?period=<preset>`` or ``?from=&to=`` (custom when either is given, whatever
    ``period`` says); no parameters is :data:`DEFAULT_PRESET`."""
    first, last = parse_date(query.get("from")), parse_date(query.get("to"))
    if first is not None or last is not None:
        return custom(first, last, timezone)
    return resolve(query.get("period") or DEFAULT_PRESET, timezone, now)
