"""What a push does when the world changes between its preparation and its write lock.

A push is hashed and encoded before it queues for the lock; these tests change what that
preparation relied on in the gap (the device's status, the school's time zone) and check the
push judges by what holds under the lock. The gap is made by hand: ``apply_push`` is called
directly after the change, or with a stale time zone standing in for one read too early.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from shared.protocol import Sale
from sync_server.ledger import sales as sales_module
from sync_server.ledger.sales import DeviceNotActive, apply_push
from sync_server.records import revoke_device
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import sales, wallets

from .helpers import enroll, sale


def _wire(body: dict[str, Any]) -> Sale:
    return Sale.model_validate_json(json.dumps(body))  # strict models parse wire JSON


async def test_device_revoked_after_its_token_was_checked_applies_nothing(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    device = await enroll(client, school["enrollment_code"])
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await revoke_device(conn, device["device_id"])
        with pytest.raises(DeviceNotActive):
            await apply_push(engine, school["school_id"], device["device_id"],
                             [_wire(sale(school, 1))])
        async with engine.connect() as conn:
            stored = (await conn.execute(sa.select(sa.func.count()).select_from(sales))).scalar()
            balance = (await conn.execute(sa.select(wallets.c.balance).where(
                wallets.c.wallet_id == school["wallets"][1]["wallet_id"]))).scalar()
    finally:
        await engine.dispose()
    assert stored == 0
    assert balance == school["wallets"][1]["balance"]


async def test_business_day_follows_the_time_zone_read_under_the_lock(
        client: Any, demo: dict[str, Any], db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    school = demo["schools"][0]  # Asia/Riyadh (UTC+3)
    device = await enroll(client, school["enrollment_code"])

    read_before_lock = sales_module._read_recorded

    async def stale_timezone(*args: Any) -> Any:
        recorded = await read_before_lock(*args)
        # as if an admin changed the zone after the push read it
        recorded.calendar = dataclasses.replace(recorded.calendar, timezone="UTC")
        return recorded

    monkeypatch.setattr(sales_module, "_read_recorded", stale_timezone)
    # Two days ago (inside the offline window, so the till's day is believed), 21:30 UTC.
    evening = (datetime.now(UTC) - timedelta(days=2)).replace(hour=21, minute=30, second=0,
                                                              microsecond=0)
    late = sale(school, 1, created_at=evening)
    engine = create_engine(db_url)
    try:
        outcome = await apply_push(engine, school["school_id"], device["device_id"],
                                   [_wire(late)])
        async with engine.connect() as conn:
            day = (await conn.execute(sa.select(sales.c.business_day)
                                      .where(sales.c.ref == late["ref"]))).scalar()
    finally:
        await engine.dispose()
    assert outcome.results[0]["status"] == "applied"
    # 00:30 the next day in Riyadh; UTC would have said the day before
    assert day == (evening + timedelta(days=1)).date().isoformat()


async def test_refs_recorded_after_the_early_read_are_found_on_retry(
        client: Any, demo: dict[str, Any], db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process applies the same batch between this push's early read of recorded refs
    and its lock: the unique keys refuse the second insert and the retry answers duplicate."""
    school = demo["schools"][0]
    device = await enroll(client, school["enrollment_code"])
    batch = [_wire(sale(school, seq, wallet=1, items=(0,))) for seq in (1, 2, 3)]
    read_before_lock = sales_module._read_recorded
    reads = 0

    async def first_read_is_stale(*args: Any) -> Any:
        nonlocal reads
        reads += 1
        recorded = await read_before_lock(*args)
        if reads == 1:  # as seen before the other process committed
            recorded.stored, recorded.conflicts, recorded.seqs = {}, {}, {}
        return recorded

    engine = create_engine(db_url)
    try:
        first = await apply_push(engine, school["school_id"], device["device_id"], batch)
        monkeypatch.setattr(sales_module, "_read_recorded", first_read_is_stale)
        again = await apply_push(engine, school["school_id"], device["device_id"], batch)
        async with engine.connect() as conn:
            balance = (await conn.execute(sa.select(wallets.c.balance).where(
                wallets.c.wallet_id == school["wallets"][1]["wallet_id"]))).scalar()
    finally:
        await engine.dispose()
    assert [r["status"] for r in first.results] == ["applied"] * 3
    assert [r["status"] for r in again.results] == ["duplicate"] * 3
    assert [r["balance_after"] for r in again.results] == [
        r["balance_after"] for r in first.results]
    assert reads == 2  # one stale attempt, one retry
    assert balance == school["wallets"][1]["balance"] - sum(s.total for s in batch)
