"""The exceptions queue: what an admin must look at, marking it reviewed, reversing a sale.

Open items are derived, not copied: flagged and rejected sales and kept conflicts carry their
own review columns; a missing seq is a gap in ``device_seqs`` until a ``seq_gap_reviews`` row
says someone looked at it; payment events needing review are rejections, flagged events and
reused event IDs. A reversal is a ledger money operation (``ledger.money_ops``), never an edit of
the sale or its postings; its ``sale_refunds`` row makes a later terminal void of the sale a
``void_twice`` rather than a second refund.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow

from .. import restrictions
from ..i18n import _
from ..ledger import money_ops, seqs
from ..storage.schema import (
    OPEN_REVIEW,
    devices,
    payment_conflicts,
    payment_events,
    sale_conflicts,
    sale_refunds,
    sales,
    seq_gap_reviews,
    wallets,
)
from ..transactions import reading, writing
from . import auditlog
from .devices import DeviceRow, device_rows
from .render import FormError, idem_key, redirect, render, text, whole_number
from .scope import admin_of, found, require_write, school_of
from .sorting import ordered, sorting

routes = web.RouteTableDef()
LIMIT = 200
# The columns the open sales sort by (sorting.py); anything else: newest first.
FLAGGED_SORTS: dict[str, Any] = {
    "received": sales.c.received_at, "student": wallets.c.display_name,
    "total": sales.c.total, "balance_after": sales.c.balance_after}


def _open_sales(school_id: str) -> sa.Select[Any]:
    """Rejected or flagged sales not reviewed yet, newest first. The SQLite hint below is not
    rendered (SQLAlchemy drops table hints on SQLite); the list stays fast because it reads
    newest first with a limit, but a count over it does not: see :func:`_open_count`."""
    return (sa.select(sales.c.ref, sales.c.kind, sales.c.status, sales.c.code, sales.c.flags,
                      sales.c.total, sales.c.received_at, sales.c.balance_after,
                      sales.c.wallet_id, sale_refunds.c.kind.label("refund_kind"),
                      sales.c.lines, sales.c.created_at,
                      wallets.c.display_name)
            .with_hint(sales, "INDEXED BY ix_sales_open_review", "sqlite")
            .outerjoin(wallets, sa.and_(wallets.c.wallet_id == sales.c.wallet_id,
                                        wallets.c.school_id == school_id))
            .outerjoin(sale_refunds, sa.and_(sale_refunds.c.school_id == sales.c.school_id,
                                             sale_refunds.c.sale_ref == sales.c.ref))
            .where(sales.c.school_id == school_id, OPEN_REVIEW)
            .order_by(sales.c.received_at.desc()))


def _open_count(dialect: str, school_id: str) -> sa.Executable:
    """How many sales wait for review, read from the partial index alone (the queue's joins
    add no rows: one wallet and one refund link per sale at most).

    SQLAlchemy renders no table hints for SQLite (``with_hint`` is dropped without a word), and
    without statistics SQLite walks the school's by-day index instead: 608 ms against 1 ms on
    a school year (benchmarks/year.py). So there the index is named in SQL text, with
    OPEN_REVIEW's condition as the index was created with it."""
    if dialect == "sqlite":
        return sa.text("SELECT count(*) FROM sales INDEXED BY ix_sales_open_review"
                       " WHERE school_id = :school AND needs_review = 1"
                       " AND reviewed_at IS NULL").bindparams(school=school_id)
    return (sa.select(sa.func.count()).select_from(sales)
            .where(sales.c.school_id == school_id, OPEN_REVIEW))


def _payments_filter(school_id: str) -> sa.ColumnElement[bool]:
    """Held, rejected (v1) or flagged events nobody has reviewed or settled yet."""
    return sa.and_(payment_events.c.school_id == school_id,
                   payment_events.c.reviewed_at.is_(None),
                   sa.or_(payment_events.c.status.in_(("held", "rejected")),
                          sa.cast(payment_events.c.flags, sa.String).notin_(["[]", ""])))


async def open_gaps(conn: AsyncConnection, school_id: str,
                    rows: list[DeviceRow] | None = None) -> list[tuple[Any, int]]:
    if rows is None:
        rows = await device_rows(conn, school_id)
    reviewed = {(r.device_id, int(r.seq)) for r in await conn.execute(
        sa.select(seq_gap_reviews.c.device_id, seq_gap_reviews.c.seq)
        .where(seq_gap_reviews.c.school_id == school_id))}
    return [(d, seq) for d in rows for seq in d.missing
            if (d.device_id, seq) not in reviewed]


async def open_counts(conn: AsyncConnection, school_id: str,
                      rows: list[DeviceRow] | None = None) -> dict[str, int]:
    flagged = (await conn.execute(_open_count(conn.dialect.name, school_id))).scalar_one()
    conflicts = (await conn.execute(
        sa.select(sa.func.count()).select_from(sale_conflicts)
        .where(sale_conflicts.c.school_id == school_id,
               sale_conflicts.c.reviewed_at.is_(None)))).scalar_one()
    payments = (await conn.execute(
        sa.select(sa.func.count()).select_from(payment_events)
        .where(_payments_filter(school_id)))).scalar_one()
    payments += (await conn.execute(
        sa.select(sa.func.count()).select_from(payment_conflicts)
        .where(payment_conflicts.c.school_id == school_id,
               payment_conflicts.c.reviewed_at.is_(None)))).scalar_one()
    gaps = len(await open_gaps(conn, school_id, rows))
    return {"sales": int(flagged), "conflicts": int(conflicts), "gaps": gaps,
            "payments": int(payments), "total": int(flagged + conflicts + gaps + payments)}


@routes.get("/admin/exceptions")
async def queue(request: web.Request) -> web.StreamResponse:
    school = school_of(request)
    sid = school.school_id
    order = sorting(request, tuple(FLAGGED_SORTS), "received", descending=True)
    async with reading(request.app) as conn:
        flagged = (await conn.execute(ordered(_open_sales(sid), order, FLAGGED_SORTS,
                                              sales.c.ref).limit(LIMIT))).all()
        conflicts = (await conn.execute(
            sa.select(sale_conflicts, devices.c.name.label("device_name"))
            .outerjoin(devices, sa.and_(devices.c.device_id == sale_conflicts.c.device_id,
                                        devices.c.school_id == sid))
            .where(sale_conflicts.c.school_id == sid, sale_conflicts.c.reviewed_at.is_(None))
            .order_by(sale_conflicts.c.received_at.desc()).limit(LIMIT))).all()
        gaps = (await open_gaps(conn, sid))[:LIMIT]
        payments = (await conn.execute(
            sa.select(payment_events).where(_payments_filter(sid))
            .order_by(payment_events.c.received_at.desc()).limit(LIMIT))).all()
        pconflicts = (await conn.execute(
            sa.select(payment_conflicts)
            .where(payment_conflicts.c.school_id == sid,
                   payment_conflicts.c.reviewed_at.is_(None))
            .order_by(payment_conflicts.c.received_at.desc()).limit(LIMIT))).all()
        restricted = await restricted_items(conn, sid, flagged)
    return render(request, "exceptions.html", {
        "flagged": flagged, "conflicts": conflicts, "gaps": gaps, "payments": payments,
        "pconflicts": pconflicts, "restricted": restricted, "order": order})


async def restricted_items(conn: AsyncConnection, school_id: str,
                           rows: list[Any]) -> dict[str, list[restrictions.Hit]]:
    """For each sale flagged ``restricted_item``: which lines met which restriction, worked
    out again from the restriction history at the sale's ``created_at`` (the rows are never
    edited, so this is what the judge saw). Two queries for the whole page."""
    flagged = [r for r in rows if "restricted_item" in (r.flags or [])]
    if not flagged:
        return {}
    spans = await restrictions.spans(conn, school_id, {r.wallet_id for r in flagged})
    items = await restrictions.catalog(
        conn, school_id, {ln["product_id"] for r in flagged for ln in r.lines})
    return {r.ref: restrictions.blocked_lines(
                r.lines, restrictions.in_force(spans.get(r.wallet_id, []),
                                               r.created_at.timestamp()), items)
            for r in flagged}


async def _note(request: web.Request, field: str = "note") -> str:
    try:
        return text(await request.post(), field, max_len=1000)
    except FormError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None


@routes.post("/admin/exceptions/sales/{ref}/review")
async def review_sale(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school, admin = school_of(request), admin_of(request)
    ref, note = request.match_info["ref"], await _note(request)
    async with writing(request.app) as conn:
        result = await conn.execute(
            sa.update(sales)
            .where(sales.c.school_id == school.school_id, sales.c.ref == ref)
            .values(reviewed_at=utcnow(), reviewed_by=admin.user_id, review_note=note))
        found(result.rowcount or None)
        await auditlog.record(conn, request, "sale_reviewed", school_id=school.school_id,
                              target_type="sale", target_id=ref, note=note)
    return redirect("/admin/exceptions", _("Sale marked reviewed."))


@routes.post("/admin/exceptions/conflicts/{conflict_id:\\d+}/review")
async def review_conflict(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school, admin = school_of(request), admin_of(request)
    cid = found(whole_number(request.match_info["conflict_id"]))
    note = await _note(request)
    async with writing(request.app) as conn:
        result = await conn.execute(
            sa.update(sale_conflicts)
            .where(sale_conflicts.c.school_id == school.school_id,
                   sale_conflicts.c.conflict_id == cid)
            .values(reviewed_at=utcnow(), reviewed_by=admin.user_id, review_note=note))
        found(result.rowcount or None)
        await auditlog.record(conn, request, "conflict_reviewed", school_id=school.school_id,
                              target_type="sale_conflict", target_id=str(cid), note=note)
    return redirect("/admin/exceptions", _("Conflict marked reviewed."))


@routes.post("/admin/exceptions/gaps/{device_id}/{seq:\\d+}/review")
async def review_gap(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school, admin = school_of(request), admin_of(request)
    device_id, seq = request.match_info["device_id"], found(whole_number(request.match_info["seq"]))
    note = await _note(request)
    async with writing(request.app) as conn:
        # Only this device's gaps, not the whole school's device list: this runs under the
        # write lock.
        acked = (await conn.execute(
            sa.select(devices.c.acked_seq).where(devices.c.device_id == device_id,
                                                 devices.c.school_id == school.school_id)
        )).scalar_one_or_none()
        reviewed = (await conn.execute(
            sa.select(seq_gap_reviews.c.seq).where(seq_gap_reviews.c.device_id == device_id,
                                                   seq_gap_reviews.c.seq == seq))).first()
        is_open = (acked is not None and reviewed is None
                   and seq in await seqs.missing_for(conn, device_id, int(acked)))
        found(seq if is_open else None)
        await conn.execute(sa.insert(seq_gap_reviews).values(
            device_id=device_id, seq=seq, school_id=school.school_id, reviewed_at=utcnow(),
            reviewed_by=admin.user_id, review_note=note))
        await auditlog.record(conn, request, "missing_seq_reviewed", school_id=school.school_id,
                              target_type="device", target_id=device_id,
                              after={"seq": seq}, note=note)
    return redirect("/admin/exceptions", _("Missing seq %(seq)s marked reviewed.", seq=seq))


@routes.post("/admin/exceptions/payments/review")
async def review_payment(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school, admin = school_of(request), admin_of(request)
    form = await request.post()
    note = await _note(request)
    values = {"reviewed_at": utcnow(), "reviewed_by": admin.user_id, "review_note": note}
    async with writing(request.app) as conn:
        if form.get("conflict_id"):
            conflict_id = found(whole_number(form["conflict_id"]))
            target = str(conflict_id)
            result = await conn.execute(
                sa.update(payment_conflicts)
                .where(payment_conflicts.c.school_id == school.school_id,
                       payment_conflicts.c.conflict_id == conflict_id).values(**values))
        else:
            target = str(form.get("event_id", ""))
            # A held completion is money a parent paid: it is settled (credited or marked for
            # refund) on its payment's page, not waved through as reviewed.
            result = await conn.execute(
                sa.update(payment_events)
                .where(payment_events.c.school_id == school.school_id,
                       payment_events.c.event_id == target,
                       ~sa.and_(payment_events.c.status == "held",
                                payment_events.c.event_type == "payment.completed"))
                .values(**values))
        found(result.rowcount or None)
        await auditlog.record(conn, request, "payment_reviewed", school_id=school.school_id,
                              target_type="payment_event", target_id=target[:64], note=note)
    return redirect("/admin/exceptions", _("Payment event marked reviewed."))


@routes.post("/admin/sales/{ref}/reverse")
async def reverse_sale(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school, admin = school_of(request), admin_of(request)
    ref = request.match_info["ref"]
    form = await request.post()
    reason = await _note(request, "reason")
    sid = school.school_id
    async with reading(request.app) as conn:
        sale = found((await conn.execute(sa.select(sales.c.wallet_id, sales.c.flags).where(
            sales.c.school_id == sid, sales.c.ref == ref))).first())

    async def settle(conn: AsyncConnection, outcome: money_ops.OpOutcome) -> None:
        # A reversed sale needs no further review; keep an earlier reviewer's words.
        await conn.execute(
            sa.update(sales).where(sales.c.school_id == sid, sales.c.ref == ref,
                                   sales.c.reviewed_at.is_(None))
            .values(reviewed_at=utcnow(), reviewed_by=admin.user_id,
                    review_note=f"reversed: {reason}"[:1000]))
        await auditlog.record(conn, request, "sale_reversed", school_id=sid, target_type="sale",
                              target_id=ref,
                              before={"balance": outcome.balance_before, "flags": sale.flags},
                              after=money_ops.describe(outcome), note=reason)

    try:
        outcome = await money_ops.run(lambda: writing(request.app), money_ops.MoneyOp(
            school_id=sid, kind="reversal", wallet_id=sale.wallet_id, amount=0,
            idem_key=idem_key(form), actor=admin.user_id, reason=reason, sale_ref=ref),
            after=settle)
    except money_ops.OpRefused as exc:
        return redirect(f"/admin/sales/{ref}", _("Not reversed: %(why)s.", why=exc.words),
                        error=True)
    if outcome.replay:
        return redirect(f"/admin/sales/{ref}", _("This reversal was already posted; nothing "
                                                 "more was done."))
    return redirect(f"/admin/sales/{ref}", _("Sale reversed: the amount is back on the "
                                              "wallet."))
