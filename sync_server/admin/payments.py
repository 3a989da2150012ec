"""Gateway payments of this school: their lifecycle, their events in order, settling holds.

A payment is a gateway reference moved through its states by events (``ledger.payments``).
The list filters by state and date and shows its totals; payments pending longer than the
server's limit stand out, since a parent is waiting for that money. A held event is settled
here, once: credited to a wallet an admin picks, or marked for the gateway to refund. Both
go through the ledger; a second click replays the first outcome.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow

from ..i18n import _
from ..keys import config_key
from ..ledger import money_ops
from ..ledger import payments as ledger_payments
from ..storage.schema import payment_events, payments, wallets
from ..transactions import reading, writing
from . import auditlog, formatting, words
from .render import (
    FormError,
    idem_key,
    page_context,
    paged,
    parse_day,
    redirect,
    render,
    text,
)
from .scope import School, admin_of, found, require_write, school_of
from .sorting import ordered, sorting

routes = web.RouteTableDef()
STATES = ("pending", "completed", "failed", "refunded", "charged_back", "held",
          "refund_requested")
# The columns the list sorts by (sorting.py); anything else keeps the default: newest first.
PAYMENT_SORTS: dict[str, Any] = {
    "created": payments.c.created_at, "reference": payments.c.reference,
    "wallet": wallets.c.display_name, "amount": payments.c.amount, "state": payments.c.state,
    "credited": payments.c.credited, "debited": payments.c.debited}


def _scope(request: web.Request) -> sa.ColumnElement[bool]:
    """This school's payments; a platform admin may also look at those no school could be
    found for (an unknown wallet), to credit them to the right one."""
    school, admin = school_of(request), admin_of(request)
    if admin.is_platform and request.query.get("unassigned") == "1":
        return payments.c.school_id.is_(None)
    return payments.c.school_id == school.school_id


def _day_start(day: str, tz: str) -> datetime:
    return datetime.combine(datetime.fromisoformat(day).date(), time(), ZoneInfo(tz))


def _filters(request: web.Request, school: School) -> list[sa.ColumnElement[bool]]:
    where = [_scope(request)]
    q = request.query
    if q.get("state") in STATES:
        where.append(payments.c.state == q["state"])
    if q.get("state") == "stale":
        where += [payments.c.state == "pending", payments.c.created_at < _stale_before(request)]
    if day := parse_day(q.get("from")):
        where.append(payments.c.created_at >= _day_start(day, school.timezone))
    if day := parse_day(q.get("to")):
        where.append(payments.c.created_at
                     < _day_start(day, school.timezone) + timedelta(days=1))
    if ref := q.get("q", "").strip()[:200]:
        where.append(sa.or_(payments.c.reference == ref, payments.c.wallet_id == ref))
    return where


def _stale_before(request: web.Request) -> datetime:
    return utcnow() - timedelta(minutes=request.app[config_key].payment_pending_minutes)


@routes.get("/admin/payments")
async def payment_list(request: web.Request) -> web.StreamResponse:
    school = school_of(request)
    where = _filters(request, school)
    order = sorting(request, tuple(PAYMENT_SORTS), "created", descending=True)
    async with reading(request.app) as conn:
        rows = (await conn.execute(paged(ordered(
            sa.select(payments, wallets.c.display_name)
            .outerjoin(wallets, wallets.c.wallet_id == payments.c.wallet_id)
            .where(*where), order, PAYMENT_SORTS, payments.c.payment_id), request))).all()
        totals = (await conn.execute(
            sa.select(sa.func.count().label("count"),
                      sa.func.coalesce(sa.func.sum(payments.c.amount), 0).label("amount"),
                      sa.func.coalesce(sa.func.sum(payments.c.credited), 0).label("credited"),
                      sa.func.coalesce(sa.func.sum(payments.c.debited), 0).label("debited"))
            .where(*where))).one()
    return render(request, "payments.html", {
        **page_context(request, rows), "totals": totals, "states": STATES, "order": order,
        "stale_before": _stale_before(request)})


async def _payment(conn: AsyncConnection, request: web.Request, payment_id: str) -> Any:
    school, admin = school_of(request), admin_of(request)
    visible = payments.c.school_id == school.school_id
    if admin.is_platform:
        visible = sa.or_(visible, payments.c.school_id.is_(None))
    return found((await conn.execute(sa.select(payments).where(
        payments.c.payment_id == payment_id, visible))).first())


@routes.get("/admin/payments/{payment_id}")
async def payment_page(request: web.Request) -> web.StreamResponse:
    school = school_of(request)
    async with reading(request.app) as conn:
        payment = await _payment(conn, request, request.match_info["payment_id"])
        events = (await conn.execute(
            sa.select(payment_events).where(payment_events.c.payment_id == payment.payment_id)
            .order_by(payment_events.c.received_at, payment_events.c.event_id))).all()
        wallet = (await conn.execute(sa.select(wallets.c.wallet_id, wallets.c.display_name)
                                     .where(wallets.c.school_id == school.school_id,
                                            wallets.c.wallet_id == payment.wallet_id))).first()
    return render(request, "payment.html", {
        "payment": payment, "events": events, "wallet": wallet,
        "stale": payment.state == "pending" and payment.created_at < _stale_before(request),
        "hold_words": words.hold_words()})


async def _event_payment_id(request: web.Request, event_id: str) -> str | None:
    """The event's payment, if this admin may see it: their school's, or for a platform
    admin also one no school could be found for (a school admin never settles those: the
    money may belong to another school)."""
    school, admin = school_of(request), admin_of(request)
    visible = payment_events.c.school_id == school.school_id
    if admin.is_platform:
        visible = sa.or_(visible, payment_events.c.school_id.is_(None))
    async with reading(request.app) as conn:
        return (await conn.execute(sa.select(payment_events.c.payment_id).where(
            payment_events.c.event_id == event_id, visible))).scalar_one_or_none()


@routes.post("/admin/payments/events/{event_id}/credit")
async def credit_held(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school, admin = school_of(request), admin_of(request)
    event_id = request.match_info["event_id"]
    payment_id = found(await _event_payment_id(request, event_id))
    back = f"/admin/payments/{payment_id}"
    form = await request.post()
    try:
        wallet_id = text(form, "wallet_id", max_len=64, label="wallet")
        reason = text(form, "reason", max_len=400)
    except FormError as exc:
        return redirect(back, str(exc), error=True)

    async def audit(conn: AsyncConnection, outcome: money_ops.OpOutcome) -> None:
        await auditlog.record(conn, request, "payment_credited", school_id=school.school_id,
                              target_type="payment_event", target_id=event_id[:64],
                              before={"balance": outcome.balance_before},
                              after={**money_ops.describe(outcome), "wallet_id": wallet_id},
                              note=reason)

    try:
        outcome = await ledger_payments.credit_held(
            lambda: writing(request.app), school_id=school.school_id, event_id=event_id,
            wallet_id=wallet_id, idem_key=idem_key(form), actor=admin.user_id, reason=reason,
            after=audit)
    except money_ops.OpRefused as exc:
        if exc.code == "event_unknown":
            raise web.HTTPNotFound() from None
        return redirect(back, _("Not credited: %(why)s.", why=exc.words), error=True)
    shown = formatting.money(outcome.amount, school.currency)
    if outcome.replay:
        return redirect(back, _("This payment was already credited (%(amount)s); nothing more "
                              "was done.", amount=shown))
    return redirect(back, _("%(amount)s credited to the wallet.", amount=shown))


@routes.post("/admin/payments/events/{event_id}/refund")
async def request_refund(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school, admin = school_of(request), admin_of(request)
    event_id = request.match_info["event_id"]
    payment_id = found(await _event_payment_id(request, event_id))
    back = f"/admin/payments/{payment_id}"
    try:
        reason = text(await request.post(), "reason", max_len=400)
    except FormError as exc:
        return redirect(back, str(exc), error=True)
    marked = False

    async def audit(conn: AsyncConnection) -> None:
        await auditlog.record(conn, request, "payment_refund_requested",
                              school_id=school.school_id, target_type="payment_event",
                              target_id=event_id[:64], note=reason)

    try:
        marked = await ledger_payments.mark_for_refund(
            lambda: writing(request.app), school_id=school.school_id, event_id=event_id,
            actor=admin.user_id, reason=reason, after=audit)
    except money_ops.OpRefused as exc:
        if exc.code == "event_unknown":
            raise web.HTTPNotFound() from None
        return redirect(back, _("Not marked: %(why)s.", why=exc.words), error=True)
    if not marked:
        return redirect(back, _("It was already marked for refund; nothing more was done."))
    return redirect(back, _("Marked for refund: ask the gateway to return the money to the "
                            "payer."))
