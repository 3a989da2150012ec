"""Bracelets: the inventory list, a bracelet's page and history, and the changes to one.

Every change goes through :mod:`sync_server.bracelet_inventory` (via ``records``), which
keeps the inventory state, writes the bracelet's history row, enforces "an active bracelet
belongs to one wallet in all schools" and bumps the school version when terminals must learn
of it. Here: who may do what (assigning and delivering: admins and managers; blocking,
replacing and retiring: admins), the audit row, and the words shown back. Viewers see UIDs
masked (``Admin.sees_full_uids``): a full UID is what a copied bracelet needs.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.ids import mask_uid, normalize_uid

from .. import records
from ..bracelet_inventory import BLOCK_REASONS, bracelet_of
from ..i18n import _
from ..storage.schema import bracelets, credential_events, credentials, wallets
from ..storage.schema_people import BRACELET_STATES
from ..transactions import reading, writing
from . import auditlog
from .render import FormError, Refused, page_context, paged, redirect, render, text
from .scope import admin_of, found, require_issue, require_write, school_of

routes = web.RouteTableDef()


async def _current(conn: AsyncConnection, school_id: str, uid: str) -> Any:
    return (await conn.execute(sa.select(credentials).where(
        credentials.c.school_id == school_id, credentials.c.uid == uid))).first()


def _path_uid(request: web.Request) -> str:
    try:
        return normalize_uid(request.match_info["uid"])
    except ValueError:
        raise web.HTTPNotFound(text=_("not a bracelet UID")) from None


def _back(request: web.Request, form: Any, fallback: str) -> str:
    """Where to go after an action: the page it was started from when it is one of ours."""
    back = str(form.get("back", "")) if form is not None else ""
    return back if back.startswith("/admin/") and "//" not in back else fallback


@routes.get("/admin/bracelets")
async def bracelet_list(request: web.Request) -> web.StreamResponse:
    """The school's inventory, filtered by state (``status=active|blocked`` kept for old
    links: active means assigned or delivered)."""
    school = school_of(request)
    stmt = (sa.select(bracelets, wallets.c.display_name)
            .outerjoin(wallets, sa.and_(wallets.c.wallet_id == bracelets.c.wallet_id,
                                        wallets.c.school_id == school.school_id))
            .where(bracelets.c.school_id == school.school_id))
    if admin_of(request).sees_full_uids and (
            q := request.query.get("q", "").strip().upper()[:20]):
        stmt = stmt.where(bracelets.c.uid.like(f"%{q}%"))
    state = request.query.get("state", "")
    if state in BRACELET_STATES:
        stmt = stmt.where(bracelets.c.state == state)
    elif request.query.get("status") == "active":
        stmt = stmt.where(bracelets.c.state.in_(("assigned", "delivered")))
    elif request.query.get("status") == "blocked":
        stmt = stmt.where(bracelets.c.state == "blocked")
    async with reading(request.app) as conn:
        rows = (await conn.execute(paged(stmt.order_by(bracelets.c.updated_at.desc(),
                                                       bracelets.c.uid), request))).all()
    return render(request, "bracelets.html", {**page_context(request, rows),
                                              "states": BRACELET_STATES})


@routes.get("/admin/bracelets/{uid}")
async def bracelet_page(request: web.Request) -> web.StreamResponse:
    school = school_of(request)
    uid = _path_uid(request)
    async with reading(request.app) as conn:
        item = found((await conn.execute(
            sa.select(bracelets, wallets.c.display_name)
            .outerjoin(wallets, sa.and_(wallets.c.wallet_id == bracelets.c.wallet_id,
                                        wallets.c.school_id == school.school_id))
            .where(bracelets.c.school_id == school.school_id,
                   bracelets.c.uid == uid))).first())
        credential = await _current(conn, school.school_id, uid)
        history = (await conn.execute(
            sa.select(credential_events, wallets.c.display_name)
            .outerjoin(wallets, sa.and_(wallets.c.wallet_id == credential_events.c.wallet_id,
                                        wallets.c.school_id == school.school_id))
            .where(credential_events.c.school_id == school.school_id,
                   credential_events.c.uid == uid)
            .order_by(credential_events.c.event_id.desc()))).all()
    return render(request, "bracelet.html", {"b": item, "credential": credential,
                                             "history": history, "reasons": BLOCK_REASONS})


@routes.post("/admin/bracelets/assign")
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
            before = await bracelet_of(conn, school.school_id, uid)
            await records.assign_credential(conn, school.school_id, wallet_id, uid,
                                            actor=admin_of(request).user_id)
        except (FormError, records.RecordError) as exc:
            return redirect(back, _("Not assigned: %(why)s.", why=exc), error=True)
        await auditlog.record(
            conn, request, "bracelet_assigned", school_id=school.school_id,
            target_type="bracelet", target_id=uid,
            before={"state": before.state} if before else None,
            after={"wallet_id": wallet_id, "state": "assigned"})
    return redirect(back, _("Bracelet %(uid)s assigned.", uid=mask_uid(uid)))


@routes.post("/admin/bracelets/{uid}/deliver")
async def deliver(request: web.Request) -> web.StreamResponse:
    """The bracelet reached its student: admins and managers record it."""
    require_issue(request)
    school = school_of(request)
    form = await request.post()
    uid = _path_uid(request)
    async with writing(request.app) as conn:
        item = found(await bracelet_of(conn, school.school_id, uid))
        back = _back(request, form, f"/admin/bracelets/{uid}")
        try:
            await records.deliver_bracelet(conn, school.school_id, uid,
                                           actor=admin_of(request).user_id)
        except records.RecordError as exc:
            return redirect(back, _("Not recorded: %(why)s.", why=exc), error=True)
        await auditlog.record(conn, request, "bracelet_delivered", school_id=school.school_id,
                              target_type="bracelet", target_id=uid,
                              before={"state": item.state}, after={"state": "delivered"})
    return redirect(back, _("Bracelet %(uid)s recorded as delivered.", uid=mask_uid(uid)))


def _reason(form: Any) -> tuple[str, str | None]:
    """The block reason (one of BLOCK_REASONS) and a free note; a free text where a reason
    was expected (older forms and scripts) becomes ``other`` with that text as the note."""
    raw = str(form.get("reason", "")).strip()[:500]
    note = str(form.get("note", "")).strip()[:500] or None
    if raw in BLOCK_REASONS:
        return raw, note
    if not raw:
        return "lost", note
    return "other", note or raw


@routes.post("/admin/bracelets/{uid}/block")
async def block(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school = school_of(request)
    form = await request.post()
    async with writing(request.app) as conn:
        uid = _path_uid(request)
        before = found(await _current(conn, school.school_id, uid))
        back = _back(request, form, f"/admin/wallets/{before.wallet_id}")
        if before.status == "blocked":
            return redirect(back, _("That bracelet was already blocked."), error=True)
        reason, note = _reason(form)
        await records.block_credential(conn, school.school_id, uid, reason=reason,
                                       actor=admin_of(request).user_id, note=note)
        await auditlog.record(conn, request, "bracelet_blocked", school_id=school.school_id,
                              target_type="bracelet", target_id=uid,
                              before={"status": "active", "wallet_id": before.wallet_id},
                              after={"status": "blocked", "reason": reason}, note=note)
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
            await records.replace_credential(conn, school.school_id, old, new,
                                             actor=admin_of(request).user_id)
        except (FormError, records.RecordError) as exc:
            # Raised, not returned: leaving the block by an exception rolls the block back.
            raise Refused(back, _("Not replaced: %(why)s.", why=exc)) from None
        await auditlog.record(conn, request, "bracelet_replaced", school_id=school.school_id,
                              target_type="bracelet", target_id=old,
                              before={"uid": old, "status": before.status},
                              after={"uid": new, "wallet_id": before.wallet_id,
                                     "old_status": "blocked"})
    return redirect(back, _("Bracelet %(old)s blocked and %(new)s assigned.",
                            old=mask_uid(old), new=mask_uid(new)))


@routes.post("/admin/bracelets/{uid}/retire")
async def retire(request: web.Request) -> web.StreamResponse:
    """Out of circulation for good (a blocked or broken one): admins only."""
    require_write(request)
    school = school_of(request)
    form = await request.post()
    uid = _path_uid(request)
    async with writing(request.app) as conn:
        item = found(await bracelet_of(conn, school.school_id, uid))
        back = f"/admin/bracelets/{uid}"
        note = str(form.get("note", "")).strip()[:500] or None
        try:
            await records.retire_bracelet(conn, school.school_id, uid,
                                          actor=admin_of(request).user_id, note=note)
        except records.RecordError as exc:
            return redirect(back, _("Not retired: %(why)s.", why=exc), error=True)
        await auditlog.record(conn, request, "bracelet_retired", school_id=school.school_id,
                              target_type="bracelet", target_id=uid,
                              before={"state": item.state}, after={"state": "retired"},
                              note=note)
    return redirect(back, _("Bracelet %(uid)s retired.", uid=mask_uid(uid)))
