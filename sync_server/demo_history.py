"""Past sales for the demo (``pos-server seed-demo --history-days 14``), so the dashboard's
"last 14 days" chart, the sales list and the reports have something to show on first start.

The sales are not written into tables: they are pushed through the ledger's own push
(:func:`sync_server.ledger.sales.apply_push`) by a till enrolled for the purpose, one push per
school day, received that afternoon. So they are judged, posted and counted on their school day
exactly as a real till's sales are, balances come down by what was bought, and
``audit-ledger`` stays clean. The stand-in till is revoked afterwards: it never sells again,
and the console does not show it as a terminal gone quiet.

Who buys what comes from a generator seeded from the demo's seed, so two runs make the same
history (refs, being UUIDv7, differ). Students with a restriction, the frozen wallet and a
wallet's daily limit are respected, and nobody spends more than their balance: the history
has no exceptions to review, only sales.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import utcnow
from shared.ids import new_id, new_ref
from shared.protocol import Sale, SaleLine

from . import records
from .ledger.sales import apply_push
from .secrets import new_device_token, token_hash
from .storage.schema import devices

WEEKEND = (4, 5)  # Friday and Saturday: the demo schools are in Riyadh (Sunday-Thursday week)
OPEN, CLOSE = time(9, 30), time(13, 30)  # when the counter sells
PUSHED_AT = time(15, 0)  # when the day's sales reached the server
SHARE_BUYING = 0.45  # of the eligible students, on an average day


def school_days(today: date, days: int) -> list[date]:
    """The school days among the ``days`` calendar days before ``today`` (oldest first)."""
    back = [today - timedelta(days=n) for n in range(days, 0, -1)]
    return [d for d in back if d.weekday() not in WEEKEND]


async def seed_history(engine: AsyncEngine, demo: dict[str, Any], days: int, *,
                       seed_value: int) -> dict[str, Any]:
    """Push ``days`` days of sales for every demo school; updates the wallets' ``balance`` in
    ``demo`` and returns what was pushed (``{"days", "sales", "total", "devices"}``)."""
    rng = random.Random(seed_value + 1)
    summary: dict[str, Any] = {"days": days, "sales": 0, "devices": []}
    for school in demo["schools"]:
        device_id = await _stand_in_till(engine, school["school_id"])
        summary["devices"].append(device_id)
        tz = ZoneInfo(await _timezone(engine, school["school_id"]))
        wallets = [w for w in school["wallets"] if w["status"] == "active"
                   and not any(w["restrictions"].values())]
        seq = 0
        for day in school_days(utcnow().astimezone(tz).date(), days):
            batch = []
            for wallet in wallets:
                if rng.random() > SHARE_BUYING:
                    continue
                lines = _basket(rng, school["products"], wallet)
                if not lines:
                    continue
                seq += 1
                total = sum(line.quantity * line.unit_price for line in lines)
                batch.append(Sale(
                    ref=new_ref(), seq=seq, kind="sale", voids=None,
                    created_at=_moment(rng, day, tz), cashier_id=rng.choice(
                        school["cashiers"])["cashier_id"], wallet_id=wallet["wallet_id"],
                    credential_uid=wallet["credential_uid"], lines=lines, total=total,
                    offline=False))
                wallet["balance"] -= total
            batch.sort(key=lambda s: s.created_at)
            for i, sale in enumerate(batch):  # seqs in the order the till recorded them
                batch[i] = sale.model_copy(update={"seq": seq - len(batch) + 1 + i})
            if batch:
                outcome = await apply_push(
                    engine, school["school_id"], device_id, batch,
                    received_at=datetime.combine(day, PUSHED_AT, tz))
                applied = [r for r in outcome.results if r["status"] == "applied"]
                if len(applied) != len(batch) or any(r.get("flags") for r in applied):
                    raise RuntimeError(f"demo history for {day}: not every sale applied "
                                       f"cleanly: {outcome.results[:3]}")
                summary["sales"] += len(batch)
        async with engine.begin() as conn:
            await records.revoke_device(conn, device_id, school["school_id"])
    return summary


def _basket(rng: random.Random, products: list[dict[str, Any]],
            wallet: dict[str, Any]) -> list[SaleLine]:
    """One to three items the wallet can pay for, within its daily limit."""
    room = wallet["balance"]
    if wallet["daily_limit"] is not None:
        room = min(room, wallet["daily_limit"])
    lines: list[SaleLine] = []
    for product in rng.sample(products, rng.randint(1, 3)):
        if product["price"] <= room:
            lines.append(SaleLine(product_id=product["product_id"], name=product["name"],
                                  quantity=1, unit_price=product["price"]))
            room -= product["price"]
    return lines


def _moment(rng: random.Random, day: date, tz: ZoneInfo) -> datetime:
    start = datetime.combine(day, OPEN, tz)
    span = (datetime.combine(day, CLOSE, tz) - start).total_seconds()
    return start + timedelta(seconds=rng.uniform(0, span))


async def _timezone(engine: AsyncEngine, school_id: str) -> str:
    from .storage.schema import schools

    async with engine.connect() as conn:
        return str((await conn.execute(sa.select(schools.c.timezone)
                                       .where(schools.c.school_id == school_id))).scalar_one())


async def _stand_in_till(engine: AsyncEngine, school_id: str) -> str:
    """A device row as enrolling writes it; its token is thrown away (nobody signs in as it)."""
    device_id, enrolled = new_id("dev"), utcnow() - timedelta(days=30)
    async with engine.begin() as conn:
        await conn.execute(sa.insert(devices).values(
            device_id=device_id, school_id=school_id, name="Demo history till",
            token_hash=token_hash(new_device_token()), status="active", enrolled_at=enrolled,
            last_seen_at=enrolled, app_version="seed-demo"))
    return device_id
