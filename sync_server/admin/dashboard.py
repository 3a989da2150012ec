"""The dashboard: today's sales, sales per hour and per day (SVG), terminals, open exceptions.

"Today" and the hours are the school's local time; days come from ``sales.business_day``,
which the ledger already stores in the school's time zone. Totals are net of voids.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from aiohttp import web

from shared.clock import utcnow

from ..i18n import _
from ..keys import config_key, dialect_key
from ..storage.schema import sales
from ..transactions import reading
from .charts import bar_chart
from .devices import device_rows
from .exceptions import open_counts
from .formatting import amount
from .health import school_health
from .render import render
from .scope import school_of

routes = web.RouteTableDef()
DAYS = 14
QUARTER = 900  # seconds


@routes.get("/admin/")
async def dashboard(request: web.Request) -> web.StreamResponse:
    school = school_of(request)
    sid = school.school_id
    tz = ZoneInfo(school.timezone)
    today = utcnow().astimezone(tz).date()
    first = (today - timedelta(days=DAYS - 1)).isoformat()
    applied = sa.and_(sales.c.school_id == sid, sales.c.status == "applied")
    signed = sa.case((sales.c.kind == "void", -sales.c.total), else_=sales.c.total)
    async with reading(request.app) as conn:
        quarter = _quarter_hour(request.app[dialect_key])
        today_rows = (await conn.execute(
            sa.select(quarter.label("q"), sales.c.kind, sa.func.count().label("n"),
                      sa.func.sum(sales.c.total).label("amount"))
            .where(applied, sales.c.business_day == today.isoformat())
            .group_by(quarter, sales.c.kind))).all()
        per_day = {r.business_day: (int(r.n), int(r.amount)) for r in await conn.execute(
            sa.select(sales.c.business_day,
                      sa.func.sum(sa.case((sales.c.kind == "sale", 1), else_=0)).label("n"),
                      sa.func.sum(signed).label("amount"))
            .where(applied, sales.c.business_day >= first)
            .group_by(sales.c.business_day))}
        terminals = await device_rows(conn, sid)
        exceptions = await open_counts(conn, sid, terminals)
        config = request.app[config_key]
        health = await school_health(conn, sid, terminals,
                                     stale_minutes=config.stale_terminal_minutes,
                                     pending_minutes=config.payment_pending_minutes)
    count = sum(int(r.n) for r in today_rows if r.kind == "sale")
    voids = sum(int(r.n) for r in today_rows if r.kind == "void")
    total = sum(int(r.amount) * (-1 if r.kind == "void" else 1) for r in today_rows)
    hours: Counter[int] = Counter()
    for r in today_rows:
        local = datetime.fromtimestamp(int(r.q) * QUARTER, UTC).astimezone(tz)
        hours[local.hour] += (-1 if r.kind == "void" else 1) * int(r.amount)
    money = lambda v: amount(v, school.currency)  # noqa: E731
    hour_chart = bar_chart([(f"{h:02d}", max(hours[h], 0)) for h in range(24)],
                           title=_("Sales per hour today"), fmt=money, label_every=3,
                           anchor_end=False, empty=_("No sales yet today"))
    days = [today - timedelta(days=i) for i in range(DAYS - 1, -1, -1)]
    day_chart = bar_chart([(_short(d), max(per_day.get(d.isoformat(), (0, 0))[1], 0))
                           for d in days], title=_("Sales per day, last %(days)d days",
                                                   days=DAYS),
                          fmt=money, label_every=2, empty=_("No sales yet"))
    active = [t for t in terminals if t.status == "active"]
    return render(request, "dashboard.html", {
        "today": today, "count": count, "voids": voids, "total": total,
        "hour_chart": hour_chart, "day_chart": day_chart, "terminals": active,
        "online": sum(1 for t in active if t.online), "exceptions": exceptions,
        "health": health})


def _quarter_hour(dialect: str) -> sa.ColumnElement[Any]:
    """The UTC quarter-hour of ``created_at`` as an integer, computed in SQL.

    Every time zone's offset is a multiple of 15 minutes, so quarter-hours map exactly onto
    local hours; grouping in SQL keeps the dashboard's cost independent of the day's volume.
    """
    if dialect == "sqlite":
        epoch = sa.cast(sa.func.strftime("%s", sales.c.created_at), sa.Integer)
        return epoch / QUARTER  # integer division in SQLite
    return sa.cast(sa.func.floor(sa.extract("epoch", sales.c.created_at) / QUARTER),
                   sa.BigInteger)


def _short(day: date) -> str:
    return day.strftime("%d/%m")
