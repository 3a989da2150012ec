"""The ledger's outbound events: ``payment.credited`` and ``sale.applied``.

Both are written in the transaction that moves the money, so an event exists exactly when
its posting does. ``sale.applied`` runs on every push, the hottest path of the product, and
most schools never subscribe to it: which schools do is kept per process and read again at
most every :data:`REFRESH_SECONDS` (one small query, not one per push). A new subscription
therefore starts within that time on every process; an ended one costs at most an event row
with no delivery, since :func:`.outbox.emit` and :func:`sales_applied` only write deliveries
for endpoints subscribed at that moment.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow
from shared.ids import new_id

from ..storage.schema import webhook_deliveries, webhook_endpoints, webhook_events
from .outbox import emit

REFRESH_SECONDS = 5.0
SALE_APPLIED = "sale.applied"

# database URL -> (monotonic time read, schools with an active endpoint hearing sale.applied)
_hearing_sales: dict[str, tuple[float, frozenset[str]]] = {}


async def payment_credited(conn: AsyncConnection, *, school_id: str, payment_id: str,
                           reference: str, wallet_id: str, amount: int, currency: str,
                           balance_after: int | None, posting_id: str) -> None:
    """A gateway payment credited to a wallet (by its webhook, reconciliation, or an admin
    settling a hold). Keyed by the posting, so a replay of the same credit tells nothing."""
    await emit(conn, school_id=school_id, event_type="payment.credited", data={
        "payment_id": payment_id, "reference": reference, "wallet_id": wallet_id,
        "amount": amount, "currency": currency, "balance_after": balance_after},
        dedupe_key=f"payment.credited:{payment_id}:{posting_id}")


def forget_subscriptions() -> None:
    """A subscription changed in this process (the console): read them again at once."""
    _hearing_sales.clear()


async def _schools_hearing_sales(conn: AsyncConnection) -> frozenset[str]:
    key = conn.engine.url.render_as_string(hide_password=True)
    cached = _hearing_sales.get(key)
    if cached is not None and time.monotonic() - cached[0] < REFRESH_SECONDS:
        return cached[1]
    rows = (await conn.execute(
        sa.select(webhook_endpoints.c.school_id, webhook_endpoints.c.event_types)
        .where(webhook_endpoints.c.active))).all()
    schools = frozenset(r.school_id for r in rows if SALE_APPLIED in (r.event_types or []))
    _hearing_sales[key] = (time.monotonic(), schools)
    return schools


async def sales_applied(conn: AsyncConnection, *, school_id: str, device_id: str,
                        sales: Iterable[Any]) -> int:
    """``sale.applied`` for each of a push's applied sales (``judge.NewSale``), only when the
    school has an endpoint hearing it; how many events were written. A sale is applied once
    (its ref is unique in the school), so no dedupe key is needed: a replayed push applies
    nothing."""
    if school_id not in await _schools_hearing_sales(conn):
        return 0
    endpoints = (await conn.execute(
        sa.select(webhook_endpoints.c.endpoint_id, webhook_endpoints.c.event_types)
        .where(webhook_endpoints.c.school_id == school_id, webhook_endpoints.c.active))).all()
    hearing = [e.endpoint_id for e in endpoints if SALE_APPLIED in (e.event_types or [])]
    if not hearing:
        return 0
    now = utcnow()
    events, deliveries = [], []
    for new in sales:
        sale = new.prepared.sale
        created = new.prepared.stored_at or sale.created_at
        event_id = new_id("evt")
        events.append({"event_id": event_id, "school_id": school_id,
                       "event_type": SALE_APPLIED, "dedupe_key": None, "created_at": now,
                       "data": {"ref": sale.ref, "wallet_id": sale.wallet_id,
                                "device_id": device_id, "kind": sale.kind,
                                "total": sale.total, "balance_after": new.balance_after,
                                "business_day": new.prepared.day,
                                "created_at": created.isoformat()}})
        deliveries += [{"delivery_id": new_id("whd"), "event_id": event_id,
                        "endpoint_id": endpoint_id, "school_id": school_id,
                        "state": "pending", "attempts": 0, "next_attempt_at": now,
                        "created_at": now} for endpoint_id in hearing]
    if events:
        await conn.execute(sa.insert(webhook_events), events)
        await conn.execute(sa.insert(webhook_deliveries), deliveries)
    return len(events)
