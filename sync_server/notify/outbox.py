"""Writing outbound events: the one way any part of the server tells the outside world.

``emit`` runs inside the caller's transaction, so an event exists exactly when the change it
tells was committed; the delivery job (a separate transaction, later) sends it. Each
subscribed endpoint gets its own delivery row, so one endpoint being down never holds back
another.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow
from shared.ids import new_id

from ..insert_once import insert_once
from ..storage.schema import webhook_deliveries, webhook_endpoints, webhook_events

EVENT_TYPES = ("wallet.low_balance", "payment.credited", "bracelet.blocked", "sale.applied")


async def emit(conn: AsyncConnection, *, school_id: str, event_type: str,
               data: dict[str, Any], dedupe_key: str | None = None) -> str | None:
    """Record ``event_type`` for the school's subscribed endpoints; the event's id, or None
    when ``dedupe_key`` was already used (the event was told before)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown outbound event type {event_type!r}")
    now = utcnow()
    event_id = new_id("evt")
    written = await insert_once(conn, webhook_events, {
        "event_id": event_id, "school_id": school_id, "event_type": event_type, "data": data,
        "dedupe_key": dedupe_key, "created_at": now})
    if not written:
        return None
    endpoints = (await conn.execute(
        sa.select(webhook_endpoints.c.endpoint_id, webhook_endpoints.c.event_types)
        .where(webhook_endpoints.c.school_id == school_id, webhook_endpoints.c.active))).all()
    rows = [{"delivery_id": new_id("whd"), "event_id": event_id, "endpoint_id": e.endpoint_id,
             "school_id": school_id, "state": "pending", "attempts": 0,
             "next_attempt_at": now, "created_at": now}
            for e in endpoints if event_type in (e.event_types or [])]
    if rows:
        await conn.execute(sa.insert(webhook_deliveries), rows)
    return event_id
