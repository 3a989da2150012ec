"""The audit log page: every admin action of this school, filterable, newest first.

Viewers cannot open it (it names people and their changes). A platform admin also sees the
entries that belong to no school (their own logins, failed logins for unknown emails).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from aiohttp import web

from ..storage.schema import audit_log
from ..transactions import reading
from .render import page_context, paged, parse_day, render
from .scope import admin_of, require_admin_role, school_of

routes = web.RouteTableDef()


@routes.get("/admin/audit")
async def audit_page(request: web.Request) -> web.StreamResponse:
    require_admin_role(request)
    school, admin = school_of(request), admin_of(request)
    q = request.query
    scope = audit_log.c.school_id == school.school_id
    if admin.is_platform:
        scope = sa.or_(scope, audit_log.c.school_id.is_(None))
    stmt = sa.select(audit_log).where(scope)
    if action := q.get("action", "").strip()[:60]:
        stmt = stmt.where(audit_log.c.action == action)
    if actor := q.get("actor", "").strip().lower()[:320]:
        stmt = stmt.where(audit_log.c.actor_email.like(f"%{actor}%"))
    if target := q.get("target", "").strip()[:64]:
        stmt = stmt.where(audit_log.c.target_id == target)
    tz = ZoneInfo(school.timezone)
    if day := parse_day(q.get("from")):
        stmt = stmt.where(audit_log.c.at >= datetime.combine(
            datetime.fromisoformat(day).date(), time(), tz))
    if day := parse_day(q.get("to")):
        stmt = stmt.where(audit_log.c.at < datetime.combine(
            datetime.fromisoformat(day).date() + timedelta(days=1), time(), tz))
    async with reading(request.app) as conn:
        rows = (await conn.execute(paged(stmt.order_by(audit_log.c.audit_id.desc()),
                                         request))).all()
        actions = (await conn.execute(sa.select(audit_log.c.action).where(scope).distinct()
                                      .order_by(audit_log.c.action))).scalars().all()
    return render(request, "audit.html", {**page_context(request, rows), "actions": actions})
