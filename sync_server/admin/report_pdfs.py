"""Printable reports: the Z report of a school day and a wallet's monthly statement, as PDF
(and the statement as a page too).

Both are drawn in the admin's language with :mod:`sync_server.reports.pdf`; the figures come
from the report queries (``reports.zreport``, ``reports.statement``), so a PDF says what
the page says. Amounts are formatted as the console shows them (``formatting.amount``,
the currency named in the column header). Drawing a PDF takes tens of milliseconds of CPU,
so it runs in a worker thread (``asyncio.to_thread`` copies the request's language).

Bracelet UIDs are masked on statements for every role: a statement is printed and handed
to parents, and nobody needs a full UID on paper. Another school's wallet is "not found".
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from aiohttp import web
from babel.dates import format_skeleton

from shared.clock import utcnow
from shared.ids import mask_uid

from .. import i18n
from ..i18n import _
from ..reports import periods, statement, zreport
from ..reports.pdf import Column, FontsMissing, ReportPdf
from ..transactions import reading
from . import formatting
from .render import render
from .sales import items_text
from .scope import School, found, school_of
from .words import word

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
SAFE_NAME = re.compile(r"[^A-Za-z0-9_-]+")
T = TypeVar("T")


# ---------------------------------------------------------------- Z report


@routes.get("/admin/reports/z.pdf")
async def z_report_pdf(request: web.Request) -> web.StreamResponse:
    """``?day=YYYY-MM-DD`` (default: the school's today)."""
    school = school_of(request)
    now = utcnow()
    try:
        day = periods.parse_date(request.query.get("day")) or periods.today_in(
            school.timezone, now)
    except periods.PeriodError:
        raise web.HTTPBadRequest(text=_("The day must be a date (YYYY-MM-DD).")) from None
    async with reading(request.app) as conn:
        report = await zreport.z_report(conn, school.school_id, day, now=now)
    body = await _draw(draw_z_report, report)
    return _pdf(body, f"z-report-{day.isoformat()}.pdf")


def draw_z_report(report: zreport.ZReport) -> bytes:
    """One A4 page for a school of a dozen tills and twenty cashiers (more continue on a
    second page, with the table header repeated)."""
    cur = report.currency
    pdf = ReportPdf(title=_("End of day (Z report)"), school_name=report.school_name,
                    period=formatting.day(report.day, "full"), timezone=report.timezone,
                    generated_at=report.generated_at)
    totals = report.totals
    voids = i18n.pgettext("report", "Voids")  # the noun; the console's "Voids" is a verb
    pdf.heading(_("School totals (%(currency)s)", currency=cur))
    pdf.facts([
        (_("Sales"), _count_amount(totals.sales_count, totals.sales_amount, cur)),
        (voids, _count_amount(totals.voids_count, -totals.voids_amount, cur)),
        (_("Reversals"), _count_amount(totals.reversals_count, -totals.reversals_amount, cur)),
        (_("Net"), formatting.amount(totals.net, cur)),
        (_("Made offline"), _count_amount(totals.offline_count, totals.offline_amount, cur)),
        (_("Refused (no money moved)"), formatting.number(totals.rejected_count)),
    ])
    money = _("(%(currency)s)", currency=cur)
    figures_columns = [Column(_("Sales"), 0.8, True), Column(_("Amount"), 1.1, True),
                       Column(voids, 1.1, True), Column(_("Reversals"), 1.3, True),
                       Column(_("Net"), 1.1, True)]
    pdf.heading(f"{_('Per terminal')} {money}")
    pdf.report_table(
        [Column(_("Terminal"), 2.2), *figures_columns, Column(_("Last contact"), 1.7)],
        ([t.name, *_figure_cells(t.figures, cur),
          formatting.when(t.last_seen_at, report.timezone, "short")]
         for t in report.terminals),
        total=[_("School total"), *_figure_cells(totals, cur), ""],
        empty=_("No terminals."))
    pdf.heading(f"{_('Per cashier')} {money}")
    pdf.report_table(
        [Column(_("Cashier"), 2.2), *figures_columns],
        ([c.name, *_figure_cells(c.figures, cur)] for c in report.cashiers),
        total=[_("School total"), *_figure_cells(totals, cur)],
        empty=_("No sales on this day."))
    if not report.day_over:
        pdf.note(_("The day is not over yet: these figures will still change."))
    for t in report.incomplete_terminals:
        pdf.note(_warning(t, report.timezone))
    return pdf.pdf_bytes()


def _figure_cells(f: zreport.Figures, cur: str) -> list[str]:
    """As the page shows them: voids and reversals negative, so sales + voids + reversals
    = net on every row."""
    return [formatting.number(f.sales_count), formatting.amount(f.sales_amount, cur),
            formatting.amount(-f.voids_amount, cur),
            formatting.amount(-f.reversals_amount, cur), formatting.amount(f.net, cur)]


def _count_amount(count: int, amount: int, cur: str) -> str:
    return f"{formatting.number(count)} · {formatting.amount(amount, cur)}"


def _warning(t: zreport.TerminalLine, tz: str) -> str:
    if t.missing_seqs:
        shown = ", ".join(str(s) for s in t.missing_seqs[:10])
        return _("%(terminal)s: the server is missing sales number %(seqs)s of this "
                 "terminal; the figures lack them until it sends them.",
                 terminal=t.name, seqs=shown + ("…" if len(t.missing_seqs) > 10 else ""))
    if t.last_seen_at is None:
        return _("%(terminal)s has never contacted the server: its sales are not in these "
                 "figures.", terminal=t.name)
    return _("%(terminal)s was last heard from %(when)s: sales it made after that may "
             "still arrive.", terminal=t.name,
             when=formatting.when(t.last_seen_at, tz, "short"))


# ---------------------------------------------------------------- statements


async def _statement(request: web.Request) -> tuple[School, statement.Statement]:
    school = school_of(request)
    today = periods.today_in(school.timezone, utcnow())
    try:
        month = statement.parse_month(request.query.get("month"), today)
    except statement.MonthError:
        raise web.HTTPBadRequest(text=_("The month must be written YYYY-MM.")) from None
    async with reading(request.app) as conn:
        found_statement = found(await statement.statement(
            conn, school.school_id, request.match_info["wallet_id"], month))
    return school, found_statement


@routes.get("/admin/wallets/{wallet_id}/statement")
async def statement_page(request: web.Request) -> web.StreamResponse:
    _school, st = await _statement(request)
    return render(request, "statement.html", {
        "st": st, "month_name": month_name(st.month),
        "previous": statement.previous_month(st.month).strftime("%Y-%m"),
        "next": statement.next_month(st.month).strftime("%Y-%m"),
        "this": st.month.strftime("%Y-%m"), "details": details, "occurred": occurred_note})


@routes.get("/admin/wallets/{wallet_id}/statement.pdf")
async def statement_pdf(request: web.Request) -> web.StreamResponse:
    _school, st = await _statement(request)
    body = await _draw(draw_statement, st)
    who = SAFE_NAME.sub("-", st.student_number or st.wallet_id)[:40]
    return _pdf(body, f"statement-{who}-{st.month.strftime('%Y-%m')}.pdf")


def draw_statement(st: statement.Statement) -> bytes:
    cur = st.currency
    pdf = ReportPdf(title=_("Monthly statement"), school_name=st.school_name,
                    period=month_name(st.month), timezone=st.timezone)
    pdf.facts([
        (_("Student"), st.display_name),
        (_("Student number"), st.student_number or "—"),
        (_("Grade"), st.grade or "—"),
        (_("Homeroom"), st.homeroom or "—"),
        (_("Opening balance (%(currency)s)", currency=cur), formatting.amount(st.opening, cur)),
        (_("Money in (%(currency)s)", currency=cur), formatting.amount(st.money_in, cur)),
        (_("Money out (%(currency)s)", currency=cur), formatting.amount(-st.money_out, cur)),
        (_("Closing balance (%(currency)s)", currency=cur), formatting.amount(st.closing, cur)),
    ])
    pdf.heading(_("Movements"))
    columns = [Column(_("Posted"), 1.5), Column(_("Kind"), 1.5), Column(_("Details"), 3.2),
               Column(_("Amount (%(currency)s)", currency=cur), 1.2, True),
               Column(_("Balance (%(currency)s)", currency=cur), 1.2, True)]
    # Not word("opening"): that is the kind of a wallet's first posting (an opening balance
    # carried over from an earlier system), which can itself be a movement of the month.
    opening = ["", _("Brought forward"), "", "", formatting.amount(st.opening, cur)]
    rows = [opening] + [[formatting.when(m.posted_at, st.timezone, "short"), word(m.kind),
                         " · ".join(filter(None, (details(m), occurred_note(m, st.timezone)))),
                         formatting.amount(m.amount, cur), formatting.amount(m.balance, cur)]
                        for m in st.movements]
    pdf.report_table(columns, rows, total=["", _("Closing balance"), "",
                                           formatting.amount(st.closing - st.opening, cur),
                                           formatting.amount(st.closing, cur)])
    if not st.movements:
        pdf.note(_("No money moved in this month."))
    return pdf.pdf_bytes()


def details(m: statement.Movement) -> str:
    """What was bought and with which bracelet (masked), or the memo left with the
    posting."""
    if m.items:
        text = items_text(m.items)
        return f"{text} ({mask_uid(m.credential_uid)})" if m.credential_uid else text
    return m.memo or ""


def occurred_note(m: statement.Movement, tz: str) -> str:
    """For a sale synced on a later day than it was made: when it was made."""
    if m.kind not in ("sale", "void") or _local_day(m.occurred_at, tz) == _local_day(
            m.posted_at, tz):
        return ""
    return _("made %(when)s", when=formatting.when(m.occurred_at, tz, "short"))


def _local_day(moment: datetime, tz: str) -> date:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(ZoneInfo(tz)).date()


def month_name(month: date) -> str:
    return format_skeleton("yMMMM", month, locale=i18n.current_language())


# ---------------------------------------------------------------- shared


async def _draw(draw: Callable[[T], bytes], report: T) -> bytes:
    try:
        return await asyncio.to_thread(draw, report)
    except FontsMissing as exc:
        log.error("%s", exc)
        raise web.HTTPServiceUnavailable(text=str(exc)) from None


def _pdf(body: bytes, filename: str) -> web.Response:
    """Shown in the browser's PDF viewer (to print), saved under ``filename``."""
    return web.Response(body=body, content_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{filename}"'})
