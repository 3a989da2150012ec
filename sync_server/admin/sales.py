"""Synced sales: filtered list with paging, sale detail with its postings, CSV export.

The list, the paging, the totals and the export share one filter builder, so the CSV is
exactly the filtered list, in the list's order. Every query starts from
``sales.school_id == <this school>``; the joins to names are outer joins *within* the school,
so a row can never pull in another school's data.

Amounts are signed as the dashboard counts them: a void's total is negative (it gives money
back), and the export's ``net`` column is the signed total of applied rows and 0 for
rejected ones, so that column sums to the net the dashboard and the list's totals row show.
"""

from __future__ import annotations

from typing import Any, NamedTuple, get_args

import sqlalchemy as sa
from aiohttp import web

from shared.protocol import SaleFlag

from ..storage.schema import (
    cashiers,
    devices,
    sale_conflicts,
    sale_refunds,
    sales,
    wallets,
)
from ..transactions import reading
from . import sales_csv
from .exceptions import restricted_items
from .ledgerview import sale_entries
from .render import page_context, page_window, paged, parse_day, query_with, render
from .scope import found, school_of
from .sorting import Sorting, ordered, sorting

routes = web.RouteTableDef()
EXPORT_LIMIT = 200_000
TOTALS_CAP = 10_000  # past this many matching rows the list asks for dates instead of totals
CSV_BOM = sales_csv.CSV_BOM  # reports_csv and imports write it too
items_text = sales_csv.items_text
NAME_SORTS = ("student", "terminal", "cashier")  # sorts that need the joined names
STATUSES = ("applied", "rejected", "voided", "reversed")
REFUND_KINDS = {"voided": "void", "reversed": "reversal"}  # status filter -> sale_refunds.kind
FLAGS: tuple[str, ...] = get_args(SaleFlag)  # every flag a sale can carry, one list


# The columns the list sorts by (?sort=...&dir=...); anything else keeps the default order.
SORT_COLUMNS: dict[str, Any] = {
    "received": sales.c.received_at, "created": sales.c.created_at,
    "total": sa.case((sales.c.kind == "void", -sales.c.total), else_=sales.c.total),
    "terminal": sa.literal_column("device_name"), "cashier": sa.literal_column("cashier_name"),
    "student": sa.literal_column("display_name"), "status": sales.c.status}
SIGNED_TOTAL = SORT_COLUMNS["total"]
# What a row adds to the net: applied sales in, applied voids out, rejected rows nothing.
NET = sa.case((sales.c.status != "applied", 0), else_=SIGNED_TOTAL)


def sort_of(request: web.Request) -> Sorting:
    return sorting(request, tuple(SORT_COLUMNS), "received", descending=True)


def by_days(q: Any) -> bool:
    """A range of school days or a student search was asked for: both list school day first
    when sorted by received time (see :func:`sorted_listing`, :func:`page_refs`)."""
    return bool(parse_day(q.get("from")) or parse_day(q.get("to"))
                or (q.get("student") or "").strip())


def sorted_listing(school_id: str, request: web.Request, *,
                   names: bool = True, refunds: bool = True) -> sa.Select[Any]:
    """The list in the order asked for. Sorted by received time within a range of days, the
    rows come school day first, then received time within the day: that is the order of
    ``ix_sales_day_received`` (school, day, received, ref), so the range and the order are
    read from one index walk. By received time alone PostgreSQL walked the by-time index
    from the newest sale and filtered out every later day (946,489 rows for one October of
    a school year: 317 ms p95, 1-3 ms this way); an office filtering dates reads them day by
    day anyway. A sale pushed after its day closed is listed under its own day. A student
    search is listed the same way: that order is what each student's ``ix_sales_wallet_day``
    holds (see :func:`page_refs`)."""
    order = sort_of(request)
    stmt = listing(school_id, request.query, names=names, refunds=refunds)
    if day_ordered(request):
        return stmt.order_by(None).order_by(*day_order(DAY_KEYS, order.descending))
    return ordered(stmt, order, SORT_COLUMNS, sales.c.ref.desc())


def day_ordered(request: web.Request) -> bool:
    """Whether :func:`sorted_listing` lists school day first (received time within it)."""
    return sort_of(request).key == "received" and bool(by_days(request.query))


NARROWING = ("device", "cashier", "wallet", "student", "status", "kind", "flag")


def month_export(request: web.Request) -> bool:
    """A range of days and nothing narrower, listed in ``ix_sales_day_received``'s own order:
    walking that index is then the export's whole plan (see sales_csv.stream). A narrower
    filter has an index of its own that finds fewer rows."""
    q = request.query
    return day_ordered(request) and not any(q.get(k) for k in NARROWING)


DAY_KEYS = (sales.c.business_day, sales.c.received_at, sales.c.ref)


def day_order(keys: Any, descending: bool) -> list[Any]:
    return [k.desc() if descending else k.asc() for k in keys]


def flag_clause(flag: str) -> sa.ColumnElement[bool]:
    """Flags are a JSON list; matching its text works the same on SQLite and PostgreSQL."""
    return sa.cast(sales.c.flags, sa.String).like(f'%"{flag}"%')


def has_flags() -> sa.ColumnElement[bool]:
    return sa.cast(sales.c.flags, sa.String).notin_(["[]", ""])


# The query parameters that narrow listing() (a new filter there belongs here too).
LIST_FILTERS = ("from", "to", *NARROWING)


def listing(school_id: str, q: Any, *, names: bool = True,
            refunds: bool = True) -> sa.Select[Any]:
    """The filtered sales of one school, newest received first, with display names (without
    them when ``names`` is false: the CSV export reads a school's names once, not per row)
    and each sale's refund link (without it when ``refunds`` is false: the export reads the
    school's links once too)."""
    w, d, c = wallets.alias("w"), devices.alias("d"), cashiers.alias("c")
    f = sale_refunds
    joined: Any = sales
    named: list[Any] = []
    if names:
        joined = (sales
                  .outerjoin(w, sa.and_(w.c.wallet_id == sales.c.wallet_id,
                                        w.c.school_id == school_id))
                  .outerjoin(d, sa.and_(d.c.device_id == sales.c.device_id,
                                        d.c.school_id == school_id))
                  .outerjoin(c, sa.and_(c.c.cashier_id == sales.c.cashier_id,
                                        c.c.school_id == school_id)))
        named = [w.c.display_name, w.c.student_number, d.c.name.label("device_name"),
                 c.c.name.label("cashier_name")]
    linked: list[Any] = []
    if refunds:
        joined = joined.outerjoin(f, sa.and_(f.c.school_id == sales.c.school_id,
                                             f.c.sale_ref == sales.c.ref))
        linked = [f.c.kind.label("refund_kind"),
                  sa.func.coalesce(f.c.void_ref, f.c.op_id).label("refund_ref")]
    stmt = (
        sa.select(sales.c.ref, sales.c.seq, sales.c.kind, sales.c.created_at,
                  sales.c.received_at, sales.c.total, sales.c.status, sales.c.code,
                  sales.c.flags, sales.c.balance_after, sales.c.offline, *linked,
                  sales.c.wallet_id, sales.c.device_id, sales.c.cashier_id,
                  sales.c.business_day, sales.c.reviewed_at, sales.c.lines, *named)
        .select_from(joined)
        .where(sales.c.school_id == school_id)
    )
    if day := parse_day(q.get("from")):
        stmt = stmt.where(sales.c.business_day >= day)
    if day := parse_day(q.get("to")):
        stmt = stmt.where(sales.c.business_day <= day)
    if value := q.get("device"):
        stmt = stmt.where(sales.c.device_id == value)
    if value := q.get("cashier"):
        stmt = stmt.where(sales.c.cashier_id == value)
    if value := q.get("wallet"):
        stmt = stmt.where(sales.c.wallet_id == value)
    if value := (q.get("student") or "").strip():
        # The matching students first (a small table), then their sales through
        # ix_sales_wallet_day: filtering the joined name instead made the database walk the
        # school's every sale to find one student's (the totals: 4.2 s on a school year of
        # SQLite, 21 ms this way; benchmarks/year.py).
        stmt = stmt.where(sales.c.wallet_id.in_(matching_students(school_id, value)))
    status = q.get("status")
    if status in ("applied", "rejected"):
        stmt = stmt.where(sales.c.status == status)
    elif status in ("voided", "reversed"):
        # The school's refund links first (one per sale at most), then their sales by key:
        # filtering the outer-joined link made SQLite read every sale of the school to find
        # the voided ones (the list's totals: 0.8 s on a school year; 55 ms this way).
        stmt = stmt.where(sales.c.ref.in_(
            sa.select(f.c.sale_ref).where(f.c.school_id == school_id,
                                          f.c.kind == REFUND_KINDS[status])))
    if q.get("kind") in ("sale", "void"):
        stmt = stmt.where(sales.c.kind == q.get("kind"))
    # A flagged sale always has needs_review (set with its flags by the ledger, backfilled by
    # migration 0004): saying so first lets the database skip every unflagged sale.
    if q.get("flag") in FLAGS:
        stmt = stmt.where(sales.c.needs_review, flag_clause(q.get("flag")))
    elif q.get("flag") == "any":
        stmt = stmt.where(sales.c.needs_review, has_flags())
    return stmt.order_by(sales.c.received_at.desc(), sales.c.ref.desc())


def matching_students(school_id: str, value: str) -> sa.Select[Any]:
    """The wallets of the school whose name or student number holds ``value``."""
    pattern = f"%{value[:100].lower()}%"
    return (sa.select(wallets.c.wallet_id)
            .where(wallets.c.school_id == school_id,
                   sa.or_(sa.func.lower(wallets.c.display_name).like(pattern),
                          sa.func.lower(wallets.c.student_number).like(pattern))))


async def _choices(conn: Any, school_id: str) -> dict[str, Any]:
    devs = (await conn.execute(sa.select(devices.c.device_id, devices.c.name)
                               .where(devices.c.school_id == school_id)
                               .order_by(devices.c.name))).all()
    cas = (await conn.execute(sa.select(cashiers.c.cashier_id, cashiers.c.name)
                              .where(cashiers.c.school_id == school_id)
                              .order_by(cashiers.c.name))).all()
    return {"device_choices": devs, "cashier_choices": cas, "statuses": STATUSES,
            "flag_choices": FLAGS}


def totals_stmt(school_id: str, q: Any) -> sa.Select[Any]:
    """Count and net of the matching sales, reading at most TOTALS_CAP + 1 of them: a school
    year unfiltered is a million sales, and summing them on every page view would cost more
    than the page.

    Filtered by flag alone, the capped rows are read newest first, as the page reads them:
    that order is what makes SQLite take the flagged sales' partial index rather than walk
    the school's by-day index (2.6 s for the flagged sales' totals on a school year, 13-27 ms
    so). With a date, student, wallet or refund filter, that filter's own index bounds the
    rows, and asking for an order would make SQLite walk the by-time index instead."""
    own_index = (not any(q.get(k) for k in ("student", "wallet"))
                 and q.get("status") not in REFUND_KINDS)
    newest_first = ((q.get("flag") in FLAGS or q.get("flag") == "any") and own_index
                    and not any(q.get(k) for k in ("from", "to")))
    # A range of days alone is read in day order: that order is what makes PostgreSQL read
    # the capped rows through the by-day index. Unordered it took a sequential scan, whose
    # time depended on where in the table the days lie and where a concurrent scan of the
    # table had got to (synchronized scans): 4 ms to 0.35 s for one May of a school year.
    by_day = own_index and not q.get("flag") and by_days(q)
    rows = listing(school_id, q, names=False).order_by(
        sales.c.received_at.desc() if newest_first else None)
    if by_day:
        rows = rows.order_by(sales.c.business_day)
    capped = (rows.with_only_columns(NET.label("net"), maintain_column_froms=True)
              .limit(TOTALS_CAP + 1).subquery())
    return sa.select(sa.func.count().label("n"),
                     sa.func.coalesce(sa.func.sum(capped.c.net), 0).label("net"))


class Totals(NamedTuple):
    n: int
    net: int


async def totals(conn: Any, school_id: str, q: Any) -> Totals:
    """:func:`totals_stmt`, except where the answer is known to be past the cap without it:
    filtered by voided (or reversed) alone, the matching sales are exactly the school's
    refund links of that kind, counted from that small table. A school year held 12,020
    voided sales, and reading 10,001 of them by key to learn that the cap was passed took
    the page 90 of its 150 ms on PostgreSQL (benchmarks/year.py)."""
    kind = REFUND_KINDS.get(q.get("status", ""))
    if kind is not None and not any(q.get(k) for k in LIST_FILTERS if k != "status"):
        links = (await conn.execute(
            sa.select(sa.func.count()).select_from(sale_refunds)
            .where(sale_refunds.c.school_id == school_id,
                   sale_refunds.c.kind == kind))).scalar_one()
        if links > TOTALS_CAP:
            return Totals(int(links), 0)
    row = (await conn.execute(totals_stmt(school_id, q))).one()
    return Totals(int(row.n), int(row.net))


def page_refs(school_id: str, request: web.Request, *,
              lateral: bool = False) -> sa.Select[Any]:
    """The refs of the page's rows, in the list's order: only the sort keys are sorted
    (from ``ix_sales_day_received`` alone for a range of days), then :func:`sale_list`
    reads those rows whole by key. Sorting whole joined rows instead cost 0.2-0.4 s for one
    month of a school year (150,000 sales).

    A student search in the default order, where the database can join LATERAL
    (PostgreSQL), takes each matching student's first rows of the page from that student's
    ``ix_sales_wallet_day`` (already in day order), then orders those few: a common name
    matched 54 students and 42,315 sales of a school year, all read to sort them (110-188 ms;
    6-7 ms so, 2,754 index rows). SQLite has no LATERAL; its plain query takes 2-35 ms."""
    order = sort_of(request)
    value = (request.query.get("student") or "").strip()
    if lateral and value and order.key == "received":
        limit, offset = page_window(request)
        found_wallets = matching_students(school_id, value).subquery("m")
        others = {k: v for k, v in request.query.items() if k != "student"}
        first = (listing(school_id, others, names=False)
                 .where(sales.c.wallet_id == found_wallets.c.wallet_id)
                 .with_only_columns(*DAY_KEYS, maintain_column_froms=True)
                 .order_by(None).order_by(*day_order(DAY_KEYS, order.descending))
                 .limit(limit + offset).lateral("first"))
        return (sa.select(first.c.ref).select_from(found_wallets.join(first, sa.true()))
                .order_by(*day_order(first.c, order.descending))
                .limit(limit).offset(offset))
    names = order.key in NAME_SORTS
    return paged(sorted_listing(school_id, request, names=names)
                 .with_only_columns(sales.c.ref, maintain_column_froms=True), request)


@routes.get("/admin/sales")
async def sale_list(request: web.Request) -> web.StreamResponse:
    school = school_of(request)
    sid = school.school_id
    async with reading(request.app) as conn:
        lateral = conn.dialect.name == "postgresql"
        refs = (await conn.execute(page_refs(sid, request, lateral=lateral))).scalars().all()
        # By key alone (the refs already passed the filters), put in order here: with an
        # ORDER BY or the filters again, SQLite walked an index of the school looking for the
        # refs (1.4 s for an old month's page) instead of reading them by key.
        place = {ref: i for i, ref in enumerate(refs)}
        rows = sorted((await conn.execute(listing(sid, {}).order_by(None)
                                          .where(sales.c.ref.in_(refs)))).all()
                      if refs else [], key=lambda r: place[r.ref])
        sums = await totals(conn, sid, request.query)
        choices = await _choices(conn, school.school_id)
    whole = sums.n <= TOTALS_CAP
    return render(request, "sales.html", {
        **page_context(request, rows), "total": sums.n if whole else None,
        "net": int(sums.net) if whole else None, "totals_cap": TOTALS_CAP,
        "order": sort_of(request), "qs_export": query_with(request, page=None), **choices})


@routes.get("/admin/sales.csv")
async def export_csv(request: web.Request) -> web.StreamResponse:
    school = school_of(request)
    order = sort_of(request)
    stmt = sorted_listing(school.school_id, request, names=order.key in NAME_SORTS,
                          refunds=False).limit(EXPORT_LIMIT)
    return await sales_csv.stream(request, school, stmt, index_walk=month_export(request))


@routes.get("/admin/sales/{ref}")
async def sale_detail(request: web.Request) -> web.StreamResponse:
    school = school_of(request)
    ref = request.match_info["ref"]
    async with reading(request.app) as conn:
        sale = found((await conn.execute(sa.select(sales).where(
            sales.c.school_id == school.school_id, sales.c.ref == ref))).first())
        wallet = (await conn.execute(sa.select(wallets).where(
            wallets.c.school_id == school.school_id,
            wallets.c.wallet_id == sale.wallet_id))).first()
        device = (await conn.execute(sa.select(devices.c.name).where(
            devices.c.school_id == school.school_id,
            devices.c.device_id == sale.device_id))).scalar_one_or_none()
        cashier = (await conn.execute(sa.select(cashiers.c.name).where(
            cashiers.c.school_id == school.school_id,
            cashiers.c.cashier_id == sale.cashier_id))).scalar_one_or_none()
        refund = (await conn.execute(sa.select(sale_refunds).where(
            sale_refunds.c.school_id == school.school_id,
            sale_refunds.c.sale_ref == ref))).first()
        entries = await sale_entries(conn, school.school_id, sale.txn_id, refund)
        conflicts = (await conn.execute(sa.select(sale_conflicts).where(
            sale_conflicts.c.school_id == school.school_id,
            sale_conflicts.c.ref == ref))).all()
        restricted = (await restricted_items(conn, school.school_id, [sale])).get(ref, [])
    reversible = (sale.kind == "sale" and sale.status == "applied" and refund is None
                  and int(sale.total) > 0)
    return render(request, "sale.html", {
        "sale": sale, "refund": refund, "wallet": wallet, "device_name": device,
        "cashier_name": cashier, "restricted": restricted,
        "entries": entries, "conflicts": conflicts, "reversible": reversible,
        "delay_s": (sale.received_at - sale.created_at).total_seconds()})
