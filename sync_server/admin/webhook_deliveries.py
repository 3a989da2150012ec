"""Outbound webhook deliveries of this school: their state, every try, and redelivery.

A delivery is one event to one endpoint (``notify.delivery`` sends it). The list filters by
state and endpoint; a delivery's page shows each try with the receiver's status code, the
error and how long it took. "Redeliver" puts a delivered or failed one back in the queue,
due now, with a fresh count of tries (its earlier tries stay listed): the receiver gets the
same event ``id`` again, as with any retry. Admins only, like the endpoints.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow

from ..i18n import _
from ..storage.schema import (
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
    webhook_events,
)
from ..transactions import reading, writing
from . import auditlog
from .render import page_context, paged, redirect, render
from .scope import found, require_admin_role, school_of
from .webhooks import shown_url

routes = web.RouteTableDef()
STATES = ("pending", "delivered", "failed")
DELIVERY = "/admin/webhooks/deliveries/{delivery_id:whd_[A-Za-z0-9_-]+}"


def _listing() -> sa.Select[Any]:
    return (sa.select(webhook_deliveries, webhook_events.c.event_type,
                      webhook_endpoints.c.url, webhook_endpoints.c.active)
            .join(webhook_events, webhook_events.c.event_id == webhook_deliveries.c.event_id)
            .join(webhook_endpoints,
                  webhook_endpoints.c.endpoint_id == webhook_deliveries.c.endpoint_id))


@routes.get("/admin/webhooks/deliveries")
async def delivery_list(request: web.Request) -> web.StreamResponse:
    require_admin_role(request)
    school = school_of(request)
    where = [webhook_deliveries.c.school_id == school.school_id]
    state = request.query.get("state")
    if state in STATES:
        where.append(webhook_deliveries.c.state == state)
    endpoint = request.query.get("endpoint", "")[:64]
    if endpoint:
        where.append(webhook_deliveries.c.endpoint_id == endpoint)
    async with reading(request.app) as conn:
        rows = (await conn.execute(paged(
            _listing().where(*where).order_by(webhook_deliveries.c.created_at.desc(),
                                              webhook_deliveries.c.delivery_id.desc()),
            request))).all()
        endpoints = (await conn.execute(
            sa.select(webhook_endpoints.c.endpoint_id, webhook_endpoints.c.url)
            .where(webhook_endpoints.c.school_id == school.school_id)
            .order_by(webhook_endpoints.c.created_at))).all()
    return render(request, "webhook_deliveries.html", {
        **page_context(request, rows), "states": STATES, "state": state if state in STATES
        else "", "endpoint": endpoint, "endpoints": endpoints, "shown_url": shown_url})


async def _delivery(conn: AsyncConnection, request: web.Request, delivery_id: str) -> Any:
    return found((await conn.execute(_listing().add_columns(
        webhook_events.c.data, webhook_events.c.created_at.label("event_created_at"))
        .where(webhook_deliveries.c.delivery_id == delivery_id,
               webhook_deliveries.c.school_id == school_of(request).school_id))).first())


@routes.get(DELIVERY)
async def delivery_page(request: web.Request) -> web.StreamResponse:
    require_admin_role(request)
    async with reading(request.app) as conn:
        delivery = await _delivery(conn, request, request.match_info["delivery_id"])
        attempts = (await conn.execute(
            sa.select(webhook_attempts)
            .where(webhook_attempts.c.delivery_id == delivery.delivery_id)
            .order_by(webhook_attempts.c.at, webhook_attempts.c.attempt_id))).all()
    return render(request, "webhook_delivery.html", {
        "delivery": delivery, "attempts": attempts, "shown_url": shown_url})


@routes.post(DELIVERY + "/redeliver")
async def redeliver(request: web.Request) -> web.StreamResponse:
    require_admin_role(request)
    school = school_of(request)
    delivery_id = request.match_info["delivery_id"]
    back = f"/admin/webhooks/deliveries/{delivery_id}"
    async with writing(request.app) as conn:
        before = await _delivery(conn, request, delivery_id)
        if before.state == "pending":
            return redirect(back, _("This delivery is still being tried; nothing was changed."),
                            error=True)
        await conn.execute(
            sa.update(webhook_deliveries)
            .where(webhook_deliveries.c.delivery_id == delivery_id,
                   webhook_deliveries.c.state == before.state)
            .values(state="pending", attempts=0, next_attempt_at=utcnow(), lease_until=None,
                    delivered_at=None))
        await auditlog.record(conn, request, "webhook_redelivered", school_id=school.school_id,
                              target_type="webhook_delivery", target_id=delivery_id,
                              before={"state": before.state, "attempts": before.attempts},
                              after={"state": "pending", "event_id": before.event_id})
    return redirect(back, _("Queued again; it is sent within a few seconds."))
