"""The demo's two weeks of history go through the ledger's push, on both databases: sales on
past school days (the dashboard's 14-day chart has bars), no flags, balances down by exactly
what was bought, ``audit-ledger`` clean, and the stand-in till revoked."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

from shared.clock import utcnow
from sync_server.demo_history import WEEKEND, school_days, seed_history
from sync_server.ledger.audit import audit
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import devices, sales, wallets


def test_school_days_skip_the_weekend_and_today() -> None:
    friday = date(2026, 11, 27)
    days = school_days(friday, 14)
    assert days[0] == date(2026, 11, 15) and days[-1] == date(2026, 11, 26)
    assert len(days) == 10 and all(d.weekday() not in WEEKEND for d in days)


async def test_history_is_pushed_through_the_ledger(db_url: str, demo: dict[str, Any]) -> None:
    before = {w["wallet_id"]: w["balance"] for s in demo["schools"] for w in s["wallets"]}
    engine = create_engine(db_url)
    try:
        summary = await seed_history(engine, demo, 14, seed_value=demo["seed"])
        report = await audit(engine)
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.select(
                sales.c.business_day, sales.c.status, sales.c.flags, sales.c.wallet_id,
                sales.c.total, sales.c.device_id))).all()
            balances = dict((await conn.execute(
                sa.select(wallets.c.wallet_id, wallets.c.balance))).all())
            till_status = set((await conn.execute(
                sa.select(devices.c.status).where(
                    devices.c.device_id.in_(summary["devices"])))).scalars())
    finally:
        await engine.dispose()

    assert report["ok"], report
    history = [r for r in rows if r.device_id in summary["devices"]]
    assert len(history) == summary["sales"] > 100
    today = utcnow().date().isoformat()
    days = {r.business_day for r in history}
    assert len(days) >= 8 and all(d < today for d in days)
    assert all(r.status == "applied" and not r.flags for r in history)
    spent: dict[str, int] = {}
    for r in history:
        spent[r.wallet_id] = spent.get(r.wallet_id, 0) + int(r.total)
    for wallet_id, amount in before.items():
        assert balances[wallet_id] == amount - spent.get(wallet_id, 0) >= 0
    after = {w["wallet_id"]: w["balance"] for s in demo["schools"] for w in s["wallets"]}
    assert after == balances  # the seed-demo output tells the balances as they now are
    assert till_status == {"revoked"}
