"""Bracelets: assign to a wallet, block a lost one, replace (block + assign in one step), history.

All changes go through :mod:`sync_server.records`, which enforces "an active bracelet belongs to
at most one wallet" and bumps the school version so terminals learn of a block with their next
snapshot delta. ``credential_events`` keeps each bracelet's story (the credentials table only
holds its current state).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow
from shared.ids import mask_uid, normalize_uid

from .. import records
from ..i18n import _
from ..storage.schema import credential_events, credentials, wallets
from ..transactions import reading, writing
from . import auditlog
from .render import FormError, Refused, page_context, paged, redirect, render, text
from .scope import admin_of, found, require_issue, require_write, school_of

routes = web.RouteTableDef()


async def _event(conn: AsyncConnection, request: web.Request, school_id: str, uid: str,
                 wallet_id: str | None, action: str, other: str | None = None) -> None:
    await conn.execute(sa.insert(credential_events).values(
        school_id=school_id, uid=uid, wallet_id=wallet_id, action=action, other_uid=other,
        at=utcnow(), actor_id=admin_of(request).user_id))


async def _current(conn: AsyncConnection, school_id: str, uid: str) -> Any:
    return (await conn.execute(sa.select(credentials).where(
        credentials.c.school_id == school_id, credentials.c.uid == uid))).first()


def _path_uid(request: web.Request) -> str:
    try:
        return normalize_uid(request.match_info["uid"])
    except ValueError:
        raise web.HTTPNotFound(text=_("not a bracelet UID")) from None


@routes.get("/admin/bracelets")
async def bracelet_list(request: web.Request) -> web.StreamResponse:
    school = school_of(request)
    stmt = (sa.select(credentials, wallets.c.display_name)
            .join(wallets, sa.and_(wallets.c.wallet_id == credentials.c.wallet_id,
                                   wallets.c.school_id == school.school_id))
            .where(credentials.c.school_id == school.school_id))
    if q := request.query.get("q", "").strip().upper()[:20]:
        stmt = stmt.where(credentials.c.uid.like(f"%{q}%"))
    if request.query.get("status") in ("active", "blocked"):
        stmt = stmt.where(credentials.c.status == request.query["status"])
    async with reading(request.app) as conn:
        rows = (await conn.execute(paged(stmt.order_by(credentials.c.assigned_at.desc()),
                                         request))).all()
    return render(request, "bracelets.html", page_context(request, rows))


@routes.get("/admin/bracelets/{uid}")
async def bracelet_page(request: web.Request) -> web.StreamResponse:
    school = school_of(request)
    uid = _path_uid(request)
    async with reading(request.app) as conn:
        current = found((await conn.execute(
            sa.select(credentials, wallets.c.display_name)
            .join(wallets, wallets.c.wallet_id == credentials.c.wallet_id)
            .where(credentials.c.school_id == school.school_id,
                   credentials.c.uid == uid))).first())
        history = (await conn.execute(
            sa.select(credential_events, wallets.c.display_name)
            .outerjoin(wallets, sa.and_(wallets.c.wallet_id == credential_events.c.wallet_id,
                                        wallets.c.school_id == school.school_id))
            .where(credential_events.c.school_id == school.school_id,
                   credential_events.c.uid == uid)
            .order_by(credential_events.c.event_id.desc()))).all()
    return render(request, "bracelet.html", {"b": current, "history": history})


@routes.post("/admin/bracelets/assign")  # school managers too (require_issue)
async def assign(request: web.Request) -> web.StreamResponse:
    require_issue(request)
    school = school_of(request)
    form = await request.post()
    wallet_id = str(form.get("wallet_id", ""))
    back = f"/admin/wallets/{wallet_id}"
    async with writing(request.app) as conn:
        found((await conn.execute(sa.select(wallets.c.wallet_id).where(
            wallets.c.school_id == school.school_id,
            wallets.c.wallet_id == wallet_id))).first())
        try:
            uid = records.parse_uid(text(form, "uid", max_len=40, label="bracelet UID"))
            before = await _current(conn, school.school_id, uid)
            await records.assign_credential(conn, school.school_id, wallet_id, uid)
        except (FormError, records.RecordError) as exc:
            return redirect(back, _("Not assigned: %(why)s.", why=exc), error=True)
        await _event(conn, request, school.school_id, uid, wallet_id, "assigned")
        await auditlog.record(
            conn, request, "bracelet_assigned", school_id=school.school_id,
            target_type="bracelet", target_id=uid,
            before=({"wallet_id": before.wallet_id, "status": before.status}
                    if before else None),
            after={"wallet_id": wallet_id, "status": "active"})
    return redirect(back, _("Bracelet %(uid)s assigned.", uid=mask_uid(uid)))


@routes.post("/admin/bracelets/{uid}/block")
async def block(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school = school_of(request)
    form = await request.post()
    async with writing(request.app) as conn:
        uid = _path_uid(request)
        before = found(await _current(conn, school.school_id, uid))
        back = f"/admin/wallets/{before.wallet_id}"
        if before.status == "blocked":
            return redirect(back, _("That bracelet was already blocked."), error=True)
        await records.block_credential(conn, school.school_id, uid)
        await _event(conn, request, school.school_id, uid, before.wallet_id, "blocked")
        await auditlog.record(conn, request, "bracelet_blocked", school_id=school.school_id,
                              target_type="bracelet", target_id=uid,
                              before={"status": "active", "wallet_id": before.wallet_id},
                              after={"status": "blocked"},
                              note=str(form.get("reason", ""))[:500] or None)
    return redirect(back, _("Bracelet %(uid)s blocked; terminals refuse it after sync.",
                            uid=mask_uid(uid)))


@routes.post("/admin/bracelets/{uid}/replace")
async def replace(request: web.Request) -> web.StreamResponse:
    """Block the old bracelet and give the wallet a new one, atomically."""
    require_write(request)
    school = school_of(request)
    form = await request.post()
    async with writing(request.app) as conn:
        old = _path_uid(request)
        before = found(await _current(conn, school.school_id, old))
        back = f"/admin/wallets/{before.wallet_id}"
        try:
            new = records.parse_uid(text(form, "new_uid", max_len=40, label="new bracelet UID"))
            if new == old:
                raise FormError(_("the new bracelet must differ from the old one"))
            if before.status == "active":
                await records.block_credential(conn, school.school_id, old)
            await records.assign_credential(conn, school.school_id, before.wallet_id, new)
        except (FormError, records.RecordError) as exc:
            # Raised, not returned: leaving the block by an exception rolls the block back.
            raise Refused(back, _("Not replaced: %(why)s.", why=exc)) from None
        await _event(conn, request, school.school_id, old, before.wallet_id, "replaced_by", new)
        await _event(conn, request, school.school_id, new, before.wallet_id, "replaces", old)
        await auditlog.record(conn, request, "bracelet_replaced", school_id=school.school_id,
                              target_type="bracelet", target_id=old,
                              before={"uid": old, "status": before.status},
                              after={"uid": new, "wallet_id": before.wallet_id,
                                     "old_status": "blocked"})
    return redirect(back, _("Bracelet %(old)s blocked and %(new)s assigned.",
                            old=mask_uid(old), new=mask_uid(new)))
