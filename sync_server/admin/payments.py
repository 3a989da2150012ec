"""Payment gateway events of this school (every delivery's first outcome), newest first."""

from __future__ import annotations

import sqlalchemy as sa
from aiohttp import web

from ..storage.schema import payment_events
from ..transactions import reading
from .render import page_context, paged, render
from .scope import admin_of, school_of

routes = web.RouteTableDef()


@routes.get("/admin/payments")
async def payment_list(request: web.Request) -> web.StreamResponse:
    school, admin = school_of(request), admin_of(request)
    scope = payment_events.c.school_id == school.school_id
    if admin.is_platform and request.query.get("unassigned") == "1":
        scope = payment_events.c.school_id.is_(None)  # unknown wallets: no school to show under
    async with reading(request.app) as conn:
        rows = (await conn.execute(paged(
            sa.select(payment_events).where(scope)
            .order_by(payment_events.c.received_at.desc()), request))).all()
    return render(request, "payments.html", page_context(request, rows))
