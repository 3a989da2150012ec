"""Report pages for the school office: Z report, sales breakdown, money flows, balances.

The figures come from :mod:`sync_server.reports` (set-based SQL); this module reads the
period and sort from the URL, renders, and links each page to its CSV twin
(:mod:`.reports_csv`) so the file is exactly the page. A period the reports refuse (a custom
range the wrong way round, longer than the limit) is a 400 page saying why.

Every role that sees the school sees its reports (viewers too): they only read.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from shared.clock import utcnow

from ..i18n import _
from ..reports import balances as balance_report
from ..reports import money_flows as flow_report
from ..reports import periods
from ..reports.breakdown import BY, PER, breakdown
from ..reports.zreport import z_report
from ..transactions import reading
from .charts import bar_chart
from .formatting import amount
from .render import page_context, page_window, query_with, render
from .scope import School, school_of
from .sorting import Sorting, sorting

routes = web.RouteTableDef()
ITEM_SORTS = ("name", "category", "quantity", "amount")
BALANCE_SORTS = (*balance_report.SORTS, "balance")


def period_of(request: web.Request, school: School) -> periods.Period:
    try:
        return periods.from_query(request.query, school.timezone, utcnow())
    except periods.PeriodError as exc:
        raise web.HTTPBadRequest(text=exc.words) from None


def day_of(request: web.Request, name: str = "day") -> date | None:
    try:
        return periods.parse_date(request.query.get(name))
    except periods.PeriodError as exc:
        raise web.HTTPBadRequest(text=exc.words) from None


def presets(request: web.Request) -> list[tuple[str, str, str]]:
    """``(preset, label, query string)`` for the preset links of a period page."""
    labels = {"today": _("Today"), "yesterday": _("Yesterday"), "this_week": _("This week"),
              "this_month": _("This month"), "last_month": _("Last month")}
    kept = {k: v for k, v in request.query.items()
            if v and k not in ("period", "from", "to", "page")}
    return [(key, label, urlencode({**kept, "period": key})) for key, label in labels.items()]


def _chart(points: list[tuple[str, int]], school: School, title: str, per: str) -> Any:
    money = lambda v: amount(v, school.currency)  # noqa: E731
    labels = [(p[5:] if per == "day" else p, max(v, 0)) for p, v in points]
    return bar_chart(labels, title=title, fmt=money, label_every=max(1, len(labels) // 12),
                     anchor_end=per == "day", empty=_("No sales in this period"))


@routes.get("/admin/reports")
@routes.get("/admin/reports/")
async def index(request: web.Request) -> web.StreamResponse:
    school_of(request)
    return render(request, "reports_index.html", {"presets": presets(request)})


@routes.get("/admin/reports/z")
async def z_page(request: web.Request) -> web.StreamResponse:
    school = school_of(request)
    now = utcnow()
    day = day_of(request) or periods.today_in(school.timezone, now)
    async with reading(request.app) as conn:
        report = await z_report(conn, school.school_id, day, now=now)
    return render(request, "reports_z.html", {
        "report": report, "qs": query_with(request, day=day.isoformat()),
        "prev_day": (day - timedelta(days=1)).isoformat(),
        "next_day": (day + timedelta(days=1)).isoformat(),
        "is_today": day == periods.today_in(school.timezone, now)})


def breakdown_choice(request: web.Request) -> tuple[Any, Any]:
    by = request.query.get("by", "product")
    per = request.query.get("per", "day")
    return (by if by in BY else "product"), (per if per in PER else "day")


@routes.get("/admin/reports/sales")
async def sales_page(request: web.Request) -> web.StreamResponse:
    school = school_of(request)
    period = period_of(request, school)
    by, per = breakdown_choice(request)
    order = sorting(request, ITEM_SORTS, "amount", descending=True)
    async with reading(request.app) as conn:
        result = await breakdown(conn, school.school_id, period, by=by, per=per)
    items = sort_items(list(result.items), order)
    title = (_("Sales per day (%(currency)s)", currency=school.currency) if per == "day"
             else _("Sales per hour of the day (%(currency)s)", currency=school.currency))
    return render(request, "reports_sales.html", {
        "period": period, "result": result, "item_rows": items, "order": order, "by": by,
        "per": per, "presets": presets(request), "chart": _chart(
            list(result.series), school, title, per),
        "qs": query_with(request, page=None),
        "qs_by": {b: query_with(request, by=b) for b in BY},
        "qs_per": {p: query_with(request, per=p) for p in PER}})


def sort_items(items: list[Any], order: Sorting) -> list[Any]:
    """The breakdown has one row per product or category (a bounded list): sorted here."""
    def key(i: Any) -> Any:
        value = getattr(i, order.key)
        return value.lower() if isinstance(value, str) else value
    return sorted(items, key=key, reverse=order.descending)


@routes.get("/admin/reports/money")
async def money_page(request: web.Request) -> web.StreamResponse:
    school = school_of(request)
    period = period_of(request, school)
    order = sorting(request, flow_report.SORTS, "at", descending=True)
    limit, offset = page_window(request)
    async with reading(request.app) as conn:
        flows = await flow_report.money_flows(
            conn, school.school_id, period, sort=order.key, descending=order.descending,
            limit=limit, offset=offset)
    chart = _chart([(d.day, d.net) for d in flows.days], school,
                   _("Money into wallets per day (%(currency)s)", currency=school.currency),
                   "day")
    return render(request, "reports_money.html", {
        **page_context(request, flows.rows), "total": flows.count, "flows": flows,
        "period": period, "order": order, "presets": presets(request), "chart": chart,
        "qs": query_with(request, page=None)})


@routes.get("/admin/reports/balances")
async def balances_page(request: web.Request) -> web.StreamResponse:
    return await _balances(request, negative_only=request.query.get("negative") == "1")


@routes.get("/admin/reports/negatives")
async def negatives_page(request: web.Request) -> web.StreamResponse:
    return await _balances(request, negative_only=True)


async def _balances(request: web.Request, *, negative_only: bool) -> web.StreamResponse:
    school = school_of(request)
    day = day_of(request)
    if day is not None and day > periods.today_in(school.timezone, utcnow()):
        raise web.HTTPBadRequest(text=_("Balances are known up to today."))
    order = (sorting(request, BALANCE_SORTS, "balance") if negative_only
             else sorting(request, BALANCE_SORTS, "name"))
    limit, offset = page_window(request)
    async with reading(request.app) as conn:
        result = await balance_report.balances_at(
            conn, school.school_id, day, school.timezone, negative_only=negative_only,
            sort=order.key, descending=order.descending, limit=limit, offset=offset)
    return render(request, "reports_balances.html", {
        **page_context(request, result.rows), "total": result.count, "result": result,
        "order": order, "negative_only": negative_only, "day": day,
        "qs": query_with(request, page=None),
        "csv": "/admin/reports/balances.csv?" + query_with(
            request, page=None, negative="1" if negative_only else None)})
