"""The dashboard's health panel: what needs a person now, the same facts ``/metrics`` gives
monitoring (terminal lag, gaps, payments waiting, webhook failures), for one school.

The server cannot see a sale that never arrived, so "oldest unsynced sale" is what it can
prove: the sale received just after a terminal's first gap was made after the missing one,
so its time bounds the missing sale's age (docs/server.md, "The dashboard's health panel").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow

from ..storage.schema import payment_conflicts, payment_events, payments, sales
from .devices import DeviceRow

WEBHOOK_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Unsynced:
    name: str
    missing: int
    before: datetime | None  # the missing sales were made before this


@dataclass(frozen=True, slots=True)
class Health:
    stale: list[DeviceRow]
    unsynced: list[Unsynced]
    held: int
    pending_long: int
    webhook_failures: int
    stale_minutes: int

    @property
    def ok(self) -> bool:
        return not (self.stale or self.unsynced or self.held or self.pending_long
                    or self.webhook_failures)


async def school_health(conn: AsyncConnection, school_id: str, terminals: list[DeviceRow], *,
                        stale_minutes: int, pending_minutes: int) -> Health:
    now = utcnow()
    active = [t for t in terminals if t.status == "active"]
    stale = [t for t in active
             if t.last_seen_at is None or now - t.last_seen_at > timedelta(minutes=stale_minutes)]
    unsynced = []
    for t in active:
        if not t.missing:
            continue
        before = (await conn.execute(
            sa.select(sales.c.created_at)
            .where(sales.c.school_id == school_id, sales.c.device_id == t.device_id,
                   sales.c.seq > t.missing[0])
            .order_by(sales.c.seq).limit(1))).scalar()
        unsynced.append(Unsynced(t.name, len(t.missing), before))
    held = (await conn.execute(
        sa.select(sa.func.count()).select_from(payment_events)
        .where(payment_events.c.school_id == school_id, payment_events.c.status == "held",
               payment_events.c.reviewed_at.is_(None)))).scalar_one()
    pending_long = (await conn.execute(
        sa.select(sa.func.count()).select_from(payments)
        .where(payments.c.school_id == school_id, payments.c.state == "pending",
               payments.c.created_at < now - timedelta(minutes=pending_minutes)))).scalar_one()
    since = now - WEBHOOK_WINDOW
    failures = (await conn.execute(
        sa.select(sa.func.count()).select_from(payment_events)
        .where(payment_events.c.school_id == school_id,
               payment_events.c.status == "rejected",
               payment_events.c.received_at >= since))).scalar_one()
    failures += (await conn.execute(
        sa.select(sa.func.count()).select_from(payment_conflicts)
        .where(payment_conflicts.c.school_id == school_id,
               payment_conflicts.c.received_at >= since))).scalar_one()
    return Health(stale, unsynced, int(held), int(pending_long), int(failures), stale_minutes)
