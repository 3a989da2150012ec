"""Students and wallets: the list, a wallet's page, and every change an admin makes to one.

Changes go through :mod:`sync_server.records` (limits, freeze) and the ledger's ``move`` (money),
so each bumps the school version and reaches terminals with the next snapshot delta. Amounts are
typed in major units and parsed exactly (``parse_major``); a manual top-up or adjustment needs
a reason, which lands both in the ledger memo and in the audit log.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from .. import records, restrictions
from ..i18n import _
from ..ledger import money_ops
from ..storage.schema import credentials, products, sales, wallets
from ..transactions import reading, writing
from . import auditlog, formatting
from .ledgerview import wallet_history
from .render import (
    MAX_AMOUNT,
    FormError,
    Refused,
    idem_key,
    money,
    page_context,
    page_window,
    paged,
    redirect,
    render,
    text,
)
from .scope import School, admin_of, found, require_write, school_of
from .sorting import ordered, sorting

routes = web.RouteTableDef()
# The columns the list sorts by (sorting.py); anything else keeps the default: by name.
WALLET_SORTS: dict[str, Any] = {
    "name": wallets.c.display_name, "student_number": wallets.c.student_number,
    "grade": wallets.c.grade, "homeroom": wallets.c.homeroom, "balance": wallets.c.balance,
    "daily_limit": wallets.c.daily_limit, "status": wallets.c.status}


@routes.get("/admin/wallets")
async def wallet_list(request: web.Request) -> web.StreamResponse:
    school = school_of(request)
    stmt = sa.select(wallets).where(wallets.c.school_id == school.school_id)
    if search := request.query.get("q", "").strip()[:100].lower():
        stmt = stmt.where(sa.or_(sa.func.lower(wallets.c.display_name).like(f"%{search}%"),
                                 sa.func.lower(wallets.c.student_number).like(f"%{search}%")))
    if request.query.get("status") in ("active", "frozen", "closed"):
        stmt = stmt.where(wallets.c.status == request.query["status"])
    elif request.query.get("status") == "inactive":  # students who left (roster status)
        stmt = stmt.where(wallets.c.student_status == "inactive")
    order = sorting(request, tuple(WALLET_SORTS), "name")
    async with reading(request.app) as conn:
        rows = (await conn.execute(paged(ordered(stmt, order, WALLET_SORTS, wallets.c.wallet_id),
                                         request))).all()
    return render(request, "wallets.html", {**page_context(request, rows), "order": order})


async def _wallet(conn: AsyncConnection, school: School, wallet_id: str) -> sa.Row[Any]:
    """This school's wallet, or 404."""
    return found((await conn.execute(sa.select(wallets).where(
        wallets.c.school_id == school.school_id, wallets.c.wallet_id == wallet_id))).first())


@routes.get("/admin/wallets/{wallet_id}")
async def wallet_page(request: web.Request) -> web.StreamResponse:
    school = school_of(request)
    wallet_id = request.match_info["wallet_id"]
    limit, offset = page_window(request)
    async with reading(request.app) as conn:
        wallet = await _wallet(conn, school, wallet_id)
        entries, newer = await wallet_history(conn, school.school_id, wallet_id,
                                              limit=limit, offset=offset)
        bracelets = (await conn.execute(
            sa.select(credentials).where(credentials.c.school_id == school.school_id,
                                         credentials.c.wallet_id == wallet_id)
            .order_by(credentials.c.status, credentials.c.assigned_at.desc()))).all()
        recent = (await conn.execute(
            sa.select(sales.c.ref, sales.c.received_at, sales.c.total, sales.c.status,
                      sales.c.kind, sales.c.flags)
            .where(sales.c.school_id == school.school_id, sales.c.wallet_id == wallet_id)
            .order_by(sales.c.received_at.desc()).limit(10))).all()
        blocked = (await restrictions.active(conn, school.school_id, [wallet_id])).get(
            wallet_id, restrictions.empty())
        restriction_rows = await restrictions.history(conn, school.school_id, wallet_id)
        product_choices = await restrictions.school_products(conn, school.school_id)
    paging = page_context(request, entries)
    running = int(wallet.balance) - newer
    history = []
    for e in paging.pop("rows"):
        history.append((e, running))
        running -= int(e.amount)
    return render(request, "wallet.html", {
        "wallet": wallet, "history": history, "bracelets": bracelets, "recent": recent,
        "blocked": blocked, "restriction_rows": restriction_rows,
        "product_choices": product_choices,
        "product_names": {p.product_id: p.name for p in product_choices},
        "category_choices": sorted({p.category for p in product_choices} |
                                   set(blocked["blocked_categories"])),
        **paging})


@routes.post("/admin/wallets/{wallet_id}/money")
async def wallet_money(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school, admin = school_of(request), admin_of(request)
    wallet_id = request.match_info["wallet_id"]
    back = f"/admin/wallets/{wallet_id}"
    form = await request.post()
    try:
        kind = form.get("kind")
        if kind not in ("topup", "adjustment"):
            raise FormError(_("choose top-up or adjustment"))
        amount = money(form, "amount", school.currency, max_len=30, signed=True,
                       error=_("the amount must be non-zero and below %(most)s",
                               most=formatting.money(MAX_AMOUNT, school.currency)))
        if kind == "topup" and amount < 0:
            raise FormError(_("a top-up adds money; use an adjustment to take money off"))
        reason = text(form, "reason", max_len=400)
    except FormError as exc:
        return redirect(back, str(exc), error=True)

    async def audit(conn: AsyncConnection, outcome: money_ops.OpOutcome) -> None:
        await auditlog.record(conn, request, f"wallet_{kind}", school_id=school.school_id,
                              target_type="wallet", target_id=wallet_id,
                              before={"balance": outcome.balance_before},
                              after=money_ops.describe(outcome), note=reason)

    try:
        outcome = await money_ops.run(lambda: writing(request.app), money_ops.MoneyOp(
            school_id=school.school_id, kind=str(kind), wallet_id=wallet_id, amount=amount,
            idem_key=idem_key(form), actor=admin.user_id, reason=reason), after=audit)
    except money_ops.OpRefused as exc:
        if exc.code == "wallet_unknown":
            raise web.HTTPNotFound() from None
        return redirect(back, _("Nothing posted: %(why)s.", why=exc.words), error=True)
    shown = formatting.money(amount, school.currency)
    if outcome.replay:
        return redirect(back, _("Top-up of %(amount)s was already posted; nothing more was "
                                "done.", amount=shown) if kind == "topup" else
                        _("Adjustment of %(amount)s was already posted; nothing more was "
                          "done.", amount=shown))
    return redirect(back, _("Top-up of %(amount)s posted.", amount=shown) if kind == "topup"
                    else _("Adjustment of %(amount)s posted.", amount=shown))


@routes.post("/admin/wallets/{wallet_id}/settings")
async def wallet_settings(request: web.Request) -> web.StreamResponse:
    """Daily limit and status (freeze/unfreeze/close) in one small form each."""
    require_write(request)
    school = school_of(request)
    wallet_id = request.match_info["wallet_id"]
    back = f"/admin/wallets/{wallet_id}"
    form = await request.post()
    changes: dict[str, Any] = {}
    try:
        if "daily_limit" in form:
            given = text(form, "daily_limit", max_len=30, required=False)
            changes["daily_limit"] = money(
                form, "daily_limit", school.currency, max_len=30,
                error=_("the daily limit must be zero or more")) if given else None
        if "status" in form:
            if form["status"] not in ("active", "frozen", "closed"):
                raise FormError(_("status must be active, frozen or closed"))
            changes["status"] = form["status"]
        if "display_name" in form:
            changes["display_name"] = text(form, "display_name", label="name")
        for name in ("grade", "homeroom"):
            if name in form:
                changes[name] = _short_text(form, name)
    except FormError as exc:
        return redirect(back, str(exc), error=True)
    if not changes:
        return redirect(back, _("Nothing to change."), error=True)
    async with writing(request.app) as conn:
        wallet = await _wallet(conn, school, wallet_id)
        before = {k: wallet._mapping[k] for k in changes}
        if before == changes:
            return redirect(back, _("Nothing changed."))
        changes = {k: v for k, v in changes.items() if before[k] != v}
        before = {k: before[k] for k in changes}
        await records.update_wallet(conn, school.school_id, wallet_id, **changes)
        action = ("wallet_frozen" if changes.get("status") == "frozen" else
                  "wallet_unfrozen" if changes.get("status") == "active" else
                  "wallet_closed" if changes.get("status") == "closed" else "wallet_updated")
        await auditlog.record(conn, request, action, school_id=school.school_id,
                              target_type="wallet", target_id=wallet_id, before=before,
                              after=changes)
    return redirect(back, _("Saved; terminals get it with their next sync."))


def _short_text(form: Any, name: str) -> str | None:
    """Grade or homeroom: at most 40 characters of visible text (the column's size), or None
    when left empty."""
    value = text(form, name, max_len=40, required=False)
    problem = restrictions.value_problem(value, name, 40) if value else None
    if problem:
        raise FormError(problem)
    return value or None


@routes.post("/admin/wallets/{wallet_id}/restrictions")
async def wallet_restrictions(request: web.Request) -> web.StreamResponse:
    """Replace the wallet's blocked categories, products and allergens with what the form
    says (checkboxes and a comma list): lifted ones are closed, new ones opened, so the
    history keeps when each was in force (the ``restricted_item`` flag depends on it)."""
    require_write(request)
    school, admin = school_of(request), admin_of(request)
    wallet_id = request.match_info["wallet_id"]
    back = f"/admin/wallets/{wallet_id}"
    form = await request.post()
    try:
        chosen_categories = {str(v).strip() for v in form.getall("category", [])} - {""}
        chosen_products = {str(v).strip() for v in form.getall("product", [])} - {""}
        allergens = restrictions.parse_allergens(text(form, "allergens", max_len=2000,
                                                      required=False))
    except (FormError, restrictions.RestrictionError) as exc:
        return redirect(back, _("Not saved: %(why)s.", why=exc), error=True)
    async with writing(request.app) as conn:
        await _wallet(conn, school, wallet_id)  # 404 for another school's wallet
        categories = {r[0] for r in await conn.execute(
            sa.select(products.c.category).distinct()
            .where(products.c.school_id == school.school_id))}
        current = (await restrictions.active(conn, school.school_id, [wallet_id])).get(
            wallet_id, restrictions.empty())
        # A category no product has any more may stay blocked, but not be newly typed in.
        unknown = sorted(chosen_categories - categories - set(current["blocked_categories"]))
        if unknown:
            raise Refused(back, _("Not saved: no category %(name)r in this school.",
                                    name=unknown[0]))
        try:
            change = await restrictions.set_for_wallet(
                conn, school.school_id, wallet_id, restrictions.Wanted(
                    frozenset(chosen_categories), frozenset(chosen_products),
                    frozenset(allergens)), actor=admin.user_id)
        except restrictions.RestrictionError as exc:
            raise Refused(back, _("Not saved: %(why)s.", why=exc)) from None
        if not change:
            return redirect(back, _("Nothing changed."))
        await auditlog.record(conn, request, "wallet_restrictions_set",
                              school_id=school.school_id, target_type="wallet",
                              target_id=wallet_id, before=current, after=change.describe())
    return redirect(back, _("Restrictions saved; terminals get them with their next "
                            "sync."))
