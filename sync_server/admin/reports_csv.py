"""CSV twins of the report pages, streamed: the same query as the page, every row.

Numbers stay machine-readable whatever the console's language: amounts as dot decimals in
major units (``-12.50``) with the currency in its own column, days as ISO dates, moments as
ISO 8601 UTC, as the sales export always did. Amounts are signed as the page counts them, so
a column sums to the page's total: refunds and debits negative in the money flows, voids and
reversals negative in the breakdowns, negative balances negative. Text cells go through
``safe_cell`` (CSV injection).

Long lists (money flows, balances) are read from a server-side cursor in chunks and written
as they come, so memory stays flat whatever the size; the Z report and breakdowns are
already grouped to a few hundred rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from aiohttp import web

from shared.clock import utcnow

from ..reports import balances as balance_report
from ..reports import money_flows as flow_report
from ..reports import periods
from ..reports.breakdown import breakdown
from ..reports.zreport import Figures, z_report
from ..transactions import reading
from .csv_cells import safe_cell
from .formatting import major
from .reports import BALANCE_SORTS, breakdown_choice, day_of, period_of
from .sales import CSV_BOM
from .scope import school_of
from .sorting import sorting

routes = web.RouteTableDef()
CHUNK = 1000  # rows per cursor fetch and per network write


class CsvStream:
    """A chunked CSV response: a BOM (Excel then reads UTF-8), a header, rows as they come."""

    def __init__(self, request: web.Request, filename: str) -> None:
        self.request = request
        self.response = web.StreamResponse(headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{filename}"'})
        self.buf = io.StringIO()
        self.writer = csv.writer(self.buf)

    async def start(self, header: Sequence[str]) -> None:
        await self.response.prepare(self.request)
        await self.response.write(CSV_BOM)
        self.writer.writerow(header)

    async def rows(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            self.writer.writerow([safe_cell(v) for v in row])
        await self.response.write(self.buf.getvalue().encode())
        self.buf.seek(0)
        self.buf.truncate()

    async def finish(self) -> web.StreamResponse:
        await self.rows(())
        await self.response.write_eof()
        return self.response


async def chunks(conn: Any, stmt: Any) -> AsyncIterator[Sequence[Any]]:
    """``stmt``'s rows in chunks from a server-side cursor (a lazy cursor on SQLite)."""
    result = await conn.stream(stmt.execution_options(yield_per=CHUNK))
    async for part in result.partitions(CHUNK):
        yield part


def _figures(f: Figures, currency: str) -> list[Any]:
    return [f.sales_count, major(f.sales_amount, currency), f.voids_count,
            major(-f.voids_amount, currency), f.reversals_count,
            major(-f.reversals_amount, currency), major(f.net, currency), f.offline_count,
            major(f.offline_amount, currency), f.rejected_count]


FIGURE_COLUMNS = ["sales", "sales_amount", "voids", "voids_amount", "reversals",
                  "reversals_amount", "net", "offline_sales", "offline_amount", "rejected"]


@routes.get("/admin/reports/z.csv")
async def z_csv(request: web.Request) -> web.StreamResponse:
    """One row per terminal, per cashier and the school total (``section`` says which);
    void and reversal amounts negative, so sales + voids + reversals = net on every row."""
    school = school_of(request)
    async with reading(request.app) as conn:
        day = day_of(request) or periods.today_in(school.timezone, utcnow())
        report = await z_report(conn, school.school_id, day)
    out = CsvStream(request, f"z-report-{day.isoformat()}.csv")
    await out.start(["day", "section", "id", "name", *FIGURE_COLUMNS, "currency",
                     "last_contact", "acked_seq", "max_seq", "missing_seqs",
                     "may_be_incomplete"])
    cur = school.currency
    rows: list[list[Any]] = []
    for t in report.terminals:
        rows.append([day.isoformat(), "terminal", t.device_id, t.name,
                     *_figures(t.figures, cur), cur,
                     t.last_seen_at.isoformat() if t.last_seen_at else "", t.acked_seq,
                     t.max_seq, " ".join(map(str, t.missing_seqs)),
                     "yes" if t.may_be_incomplete else "no"])
    for c in report.cashiers:
        rows.append([day.isoformat(), "cashier", c.cashier_id, c.name,
                     *_figures(c.figures, cur), cur, "", "", "", "", ""])
    rows.append([day.isoformat(), "school", school.school_id, school.name,
                 *_figures(report.totals, cur), cur, "", "", "", "", ""])
    await out.rows(rows)
    return await out.finish()


@routes.get("/admin/reports/sales.csv")
async def sales_csv(request: web.Request) -> web.StreamResponse:
    """One row per item and day (or hour): the cells of the page's chart and table."""
    school = school_of(request)
    period = period_of(request, school)
    by, per = breakdown_choice(request)
    async with reading(request.app) as conn:
        result = await breakdown(conn, school.school_id, period, by=by, per=per)
    names = {i.key: i for i in result.items}
    out = CsvStream(request, f"sales-by-{by}-{per}-{period.first_day}-{period.last_day}.csv")
    await out.start([per, by + ("_id" if by == "product" else ""), "name", "category",
                     "quantity", "amount", "currency"])
    await out.rows([c.when, c.key, names[c.key].name, names[c.key].category, c.quantity,
                    major(c.amount, school.currency), school.currency] for c in result.cells)
    return await out.finish()


@routes.get("/admin/reports/money.csv")
async def money_csv(request: web.Request) -> web.StreamResponse:
    school = school_of(request)
    period = period_of(request, school)
    order = sorting(request, flow_report.SORTS, "at", descending=True)
    async with reading(request.app) as conn:
        stmt = flow_report.listing(school.school_id, period, conn.dialect.name,
                                   sort=order.key, descending=order.descending)
        out = CsvStream(request, f"money-{period.first_day}-{period.last_day}.csv")
        parts = chunks(conn, stmt)
        first = await anext(parts, None)  # the query runs before the 200 goes out
        await out.start(["at", "day", "source", "kind", "wallet_id", "student_number",
                         "student", "amount", "currency", "reference"])
        while first is not None:
            await out.rows([r.at.isoformat(), r.day, r.source, r.kind, r.wallet_id,
                            r.student_number, r.display_name, major(r.amount, school.currency),
                            school.currency, r.reference] for r in first)
            first = await anext(parts, None)
        return await out.finish()


@routes.get("/admin/reports/balances.csv")
async def balances_csv(request: web.Request) -> web.StreamResponse:
    school = school_of(request)
    day = day_of(request)
    negative_only = request.query.get("negative") == "1"
    order = sorting(request, BALANCE_SORTS, "balance" if negative_only else "name")
    async with reading(request.app) as conn:
        backward = await balance_report.replay_backward(conn, school.school_id, day,
                                                        school.timezone)
        stmt, as_of = balance_report.listing(school.school_id, day, school.timezone,
                                             negative_only=negative_only, backward=backward)
        stmt = balance_report.ordered(stmt, order.key, order.descending)
        label = day.isoformat() if day else "now"
        out = CsvStream(request, f"balances-{label}.csv")
        parts = chunks(conn, stmt)
        first = await anext(parts, None)
        await out.start(["as_of", "wallet_id", "student_number", "student", "grade",
                         "homeroom", "status", "balance", "currency"])
        stamp = as_of.isoformat() if as_of else "now"
        while first is not None:
            await out.rows([stamp, r.wallet_id, r.student_number, r.display_name, r.grade,
                            r.homeroom, r.status, major(r.balance, school.currency),
                            school.currency] for r in first)
            first = await anext(parts, None)
        return await out.finish()
