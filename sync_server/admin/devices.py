"""Terminals: enrollment codes, the device list with sync health, and revoking a device.

"Queue lag" is what the server can know of a terminal's queue: how long its most recently
received sale waited between the till (``created_at``) and the server (``received_at``), plus
how many of its seqs are still not acknowledged (``max_seq - acked_seq``).

"Last seen" is written in batches (:mod:`sync_server.presence`): it trails a terminal's latest
poll by up to ``presence_flush_seconds`` (60 s), and is right after each flush. That is well
inside ``ONLINE_WITHIN``, so a polling terminal never shows offline for it (a flush interval
set longer than ``ONLINE_WITHIN`` would make it do so).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow

from .. import records
from ..i18n import _
from ..keys import config_key
from ..ledger import seqs, versions
from ..storage.schema import device_seqs, devices, enrollment_codes, sales
from ..transactions import reading, writing
from . import auditlog
from .render import redirect, render
from .scope import admin_of, found, require_write, school_of

routes = web.RouteTableDef()
ONLINE_WITHIN = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class DeviceRow:
    device_id: str
    name: str
    status: str
    last_seen_at: datetime | None
    app_version: str | None
    acked_seq: int
    max_seq: int
    lag_seconds: float | None
    missing: list[int]
    online: bool


async def device_rows(conn: AsyncConnection, school_id: str) -> list[DeviceRow]:
    # The latest sale of a device is the one at its max_seq: its ref from device_seqs, then
    # the sale by its key. (sales has no index on device and seq; a join on them read the
    # school's every sale, 6 s on a school year on PostgreSQL, and SQLite drove a one-query
    # join from the school's sales whatever the join terms said.)
    last = {r.ref: r.device_id for r in await conn.execute(
        sa.select(devices.c.device_id, device_seqs.c.ref)
        .join(device_seqs, sa.and_(device_seqs.c.device_id == devices.c.device_id,
                                   device_seqs.c.seq == devices.c.max_seq))
        .where(devices.c.school_id == school_id))}
    lags = {r.device_id: (r.received_at - r.created_at).total_seconds()
            for r in await conn.execute(
                sa.select(sales.c.ref, sales.c.device_id, sales.c.created_at,
                          sales.c.received_at)
                .where(sales.c.school_id == school_id, sales.c.ref.in_(list(last))))
            if last[r.ref] == r.device_id}
    now = utcnow()
    rows = []
    for d in await conn.execute(sa.select(devices).where(devices.c.school_id == school_id)
                                .order_by(devices.c.name, devices.c.device_id)):
        missing = await seqs.missing_for(conn, d.device_id, int(d.acked_seq))
        rows.append(DeviceRow(
            d.device_id, d.name, d.status, d.last_seen_at, d.app_version,
            int(d.acked_seq), int(d.max_seq), lags.get(d.device_id), missing,
            d.status == "active" and d.last_seen_at is not None
            and now - d.last_seen_at <= ONLINE_WITHIN))
    return rows


@routes.get("/admin/devices")
async def device_list(request: web.Request) -> web.StreamResponse:
    school = school_of(request)
    async with reading(request.app) as conn:
        rows = await device_rows(conn, school.school_id)
        codes = await recent_codes(conn, school.school_id)
    return render(request, "devices.html", {"devices": rows, "codes": codes, "new_code": None,
                                            "now": utcnow()})


async def recent_codes(conn: AsyncConnection, school_id: str) -> list[Any]:
    """The school's last 20 enrollment codes (never the codes themselves: only hashes are
    kept), newest first, with when each expires or was used."""
    return list((await conn.execute(
        sa.select(enrollment_codes.c.created_at, enrollment_codes.c.expires_at,
                  enrollment_codes.c.used_at, enrollment_codes.c.device_id)
        .where(enrollment_codes.c.school_id == school_id)
        .order_by(enrollment_codes.c.created_at.desc()).limit(20))).all())


@routes.post("/admin/devices/enrollment-codes")
async def new_code(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school = school_of(request)
    ttl = request.app[config_key].enrollment_ttl
    async with writing(request.app) as conn:
        code = await records.create_enrollment_code(conn, school.school_id, ttl,
                                                    created_by=admin_of(request).user_id)
        await auditlog.record(conn, request, "enrollment_code_created",
                              school_id=school.school_id, target_type="enrollment_code",
                              after={"expires_in_hours": ttl.total_seconds() / 3600})
    async with reading(request.app) as conn:
        rows = await device_rows(conn, school.school_id)
        codes = await recent_codes(conn, school.school_id)
    # Shown once, on this response only: the database keeps just its hash. The list of codes
    # and their expiry stays on the page (it used to vanish after creating one).
    return render(request, "devices.html", {
        "devices": rows, "codes": codes, "new_code": code, "now": utcnow(),
        "new_code_expires": codes[0].expires_at if codes else None})


@routes.post("/admin/devices/{device_id}/revoke")
async def revoke(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school = school_of(request)
    device_id = request.match_info["device_id"]
    form = await request.post()
    reason = str(form.get("reason", "")).strip()[:500]
    async with writing(request.app) as conn:
        before = found((await conn.execute(
            sa.select(devices.c.status, devices.c.name)
            .where(devices.c.device_id == device_id,
                   devices.c.school_id == school.school_id))).first())
        if before.status == "revoked":
            return redirect("/admin/devices", _("That terminal was already revoked."),
                            error=True)
        await records.revoke_device(conn, device_id, school.school_id)
        await versions.announce(conn, school.school_id)  # its event stream ends now
        await auditlog.record(conn, request, "device_revoked", school_id=school.school_id,
                              target_type="device", target_id=device_id,
                              before={"status": before.status, "name": before.name},
                              after={"status": "revoked"}, note=reason or None)
    return redirect("/admin/devices", _("Terminal %(name)s revoked; its next request is refused.",
                                        name=before.name))


def lag_text(seconds: Any) -> str:
    if seconds is None:
        return "—"
    s = max(0, int(seconds))
    if s < 120:
        return _("%(n)d s", n=s)
    if s < 7200:
        return _("%(n)d min", n=s // 60)
    return _("%(n)d h", n=s // 3600)
