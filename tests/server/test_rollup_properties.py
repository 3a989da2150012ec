"""The reports read from the rollups equal the same reports computed from the ledger's rows.

Seeded random histories go through the real paths (pushes over HTTP with sales, voids, free
items and rejected sales; admin reversals, top-ups and adjustments through ``money_ops``) while
a fake clock walks over several school days and hours, so the rollups are written by the
ledger's own transactions. Then, for many periods, the breakdown (by product and category, per
day and hour) and the balances at the end of each day (forwards and backwards) must equal the
oracle: the SQL the reports ran before the rollups, kept here, over ``sales``, ``money_ops``
and ``postings``. ``audit-ledger`` must pass too.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from sync_server.api import device_routes
from sync_server.ledger import money_ops as ledger_ops
from sync_server.ledger import sales as ledger_sales
from sync_server.ledger import transfers
from sync_server.ledger.audit import audit
from sync_server.reports import periods
from sync_server.reports.balances import balances_at
from sync_server.reports.breakdown import By, Per, breakdown
from sync_server.reports.local_time import local_day, local_hour
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import money_ops, postings, products, sales, wallets

from .helpers import enroll, push, sale, void_of

RIYADH = "Asia/Riyadh"
BY_PER: list[tuple[By, Per]] = [("product", "day"), ("product", "hour"), ("category", "day"),
                                ("category", "hour")]


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


# ------------------------------------------------------------------ the oracle (pre-0011 SQL)


def _old_lines(school_id: str, period: periods.Period, per: str, dialect: str) -> Any:
    s = sales.alias("s")
    sign = sa.case((s.c.kind == "void", -1), else_=1)
    slot = s.c.business_day if per == "day" else local_hour(s.c.created_at, period, dialect)
    text = sa.cast(s.c.lines, sa.Text)
    sold = (sa.select(text.label("lines"), slot.label("slot"), sa.func.sum(sign).label("n"))
            .where(s.c.school_id == school_id, s.c.status == "applied",
                   s.c.business_day >= period.first_day, s.c.business_day <= period.last_day)
            .group_by(text, slot))
    r = sales.alias("r")
    when = (local_day(money_ops.c.created_at, period, dialect) if per == "day"
            else local_hour(money_ops.c.created_at, period, dialect))
    text = sa.cast(r.c.lines, sa.Text)
    reversed_ = (
        sa.select(text.label("lines"), when.label("slot"), (-sa.func.count()).label("n"))
        .select_from(r.join(money_ops, sa.and_(money_ops.c.school_id == r.c.school_id,
                                               money_ops.c.sale_ref == r.c.ref)))
        .where(money_ops.c.school_id == school_id, money_ops.c.kind == "reversal",
               money_ops.c.created_at >= period.start, money_ops.c.created_at < period.end)
        .group_by(text, when))
    g = sa.union_all(sold, reversed_).subquery("g")
    if dialect == "postgresql":
        elem = sa.func.json_array_elements(sa.cast(g.c.lines, sa.JSON)).table_valued(
            "value", joins_implicitly=True).alias("e")

        def field(name: str) -> Any:
            return elem.c.value.op("->>")(name)
    else:
        elem = sa.func.json_each(g.c.lines).table_valued(
            "value", joins_implicitly=True).alias("e")

        def field(name: str) -> Any:
            return sa.func.json_extract(elem.c.value, f"$.{name}")
    return (sa.select(sa.cast(field("product_id"), sa.String).label("product_id"),
                      sa.cast(field("name"), sa.String).label("name"),
                      (g.c.n * sa.cast(field("quantity"), sa.BigInteger)).label("quantity"),
                      sa.cast(field("unit_price"), sa.BigInteger).label("unit_price"),
                      g.c.slot)
            .select_from(g).join(elem, sa.true()))


def _old_breakdown(school_id: str, period: periods.Period, by: str, per: str,
                   dialect: str) -> Any:
    lines = _old_lines(school_id, period, per, dialect).subquery("l")
    p = products.alias("p")
    category = sa.func.coalesce(p.c.category, "")
    if by == "product":
        group: Any = lines.c.product_id
        name: Any = sa.func.coalesce(sa.func.max(p.c.name), sa.func.max(lines.c.name))
        cat: Any = sa.func.max(category)
    else:
        group = name = cat = category
    return (
        sa.select(group.label("key"), name.label("name"), cat.label("category"),
                  lines.c.slot, sa.func.sum(lines.c.quantity).label("quantity"),
                  sa.func.sum(lines.c.quantity * lines.c.unit_price).label("amount"))
        .select_from(lines.outerjoin(p, sa.and_(p.c.school_id == school_id,
                                                p.c.product_id == lines.c.product_id)))
        .group_by(group, lines.c.slot))


async def _old_balances(conn: Any, school_id: str, day: date) -> dict[str, int]:
    """Every wallet opened by the end of ``day``: its postings before then, replayed."""
    end = periods.day_period(day, RIYADH).end
    out = {w: 0 for w in (await conn.execute(sa.select(wallets.c.wallet_id).where(
        wallets.c.school_id == school_id, wallets.c.created_at < end))).scalars()}
    for row in await conn.execute(sa.select(postings).where(
            postings.c.school_id == school_id, postings.c.posted_at < end)):
        if row.to_account in out:
            out[row.to_account] += int(row.amount)
        if row.from_account in out:
            out[row.from_account] -= int(row.amount)
    return out


# ------------------------------------------------------------------ the history


async def _history(client: Any, demo: dict[str, Any], db_url: str, rng: random.Random,
                   clock: Clock) -> dict[str, Any]:
    school = demo["schools"][0]
    sid = school["school_id"]
    token = (await enroll(client, school["enrollment_code"]))["device_token"]
    engine = create_engine(db_url)
    seq, kept = 0, list[dict[str, Any]]()
    n_wallets, n_products = len(school["wallets"]), len(school["products"])
    try:
        async with engine.begin() as conn:  # opened before the history starts
            await conn.execute(sa.update(wallets).where(wallets.c.school_id == sid)
                               .values(created_at=clock.now - timedelta(days=1)))
        for _ in range(14):  # pushes, each some hours after the last
            clock.now += timedelta(hours=rng.choice((1, 2, 3, 7, 19)),
                                   minutes=rng.randint(0, 59))
            batch = []
            for _ in range(rng.randint(1, 6)):
                seq += 1
                items = tuple(rng.sample(range(n_products), rng.randint(1, 3)))
                body = sale(school, seq, wallet=rng.randrange(n_wallets), items=items,
                            qty=rng.randint(1, 3),
                            created_at=clock.now - timedelta(minutes=rng.randint(1, 300)))
                if rng.random() < 0.1:  # a free line: applied, no posting
                    for line in body["lines"]:
                        line["unit_price"] = 0
                    body["total"] = 0
                batch.append(body)
            if kept and rng.random() < 0.5:
                seq += 1
                batch.append(void_of(kept.pop(rng.randrange(len(kept))), seq))
            out = await push(client, token, batch)
            kept += [b for b, r in zip(batch, out["results"], strict=True)
                     if r["status"] == "applied" and b["kind"] == "sale" and b["total"]]
            for _ in range(rng.randint(0, 2)):
                clock.now += timedelta(minutes=rng.randint(1, 90))
                wallet = school["wallets"][rng.randrange(n_wallets)]["wallet_id"]
                if kept and rng.random() < 0.4:
                    target = kept.pop(rng.randrange(len(kept)))
                    op = ledger_ops.MoneyOp(
                        school_id=sid, kind="reversal", wallet_id=target["wallet_id"],
                        amount=0, idem_key=f"rev:{target['ref']}", actor="t",
                        sale_ref=target["ref"])
                else:
                    amount = rng.choice((500, 2_000, -300))
                    op = ledger_ops.MoneyOp(
                        school_id=sid, kind="topup" if amount > 0 else "adjustment",
                        wallet_id=wallet, amount=amount, idem_key=f"op:{seq}:{rng.random()}",
                        actor="t")
                try:
                    await ledger_ops.run(engine.begin, op)
                except ledger_ops.OpRefused:
                    pass
        report = await audit(engine)
    finally:
        await engine.dispose()
    assert report["ok"], report
    return dict(school)


@pytest.mark.parametrize("seed", [1, 2])
async def test_rollup_reports_equal_the_ledger_computed(
        client: Any, demo: dict[str, Any], db_url: str, seed: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    clock = Clock(datetime.now(UTC).replace(microsecond=0) - timedelta(days=8))
    for module in (ledger_sales, transfers, ledger_ops, device_routes):
        monkeypatch.setattr(module, "utcnow", clock)
    school = await _history(client, demo, db_url, rng, clock)
    sid = school["school_id"]
    first = (clock.now - timedelta(days=9)).date()
    last = clock.now.date() + timedelta(days=1)
    ranges = [(first, last)] + [
        (d, d + timedelta(days=rng.randint(0, 3)))
        for d in (first + timedelta(days=rng.randint(0, 9)) for _ in range(4))]
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            dialect = conn.dialect.name
            for a, b in ranges:
                period = periods.custom(a, b, RIYADH)
                for by, per in BY_PER:
                    got = await breakdown(conn, sid, period, by=by, per=per)
                    cells: dict[tuple[str, str], tuple[int, int]] = {}
                    items: dict[str, list[Any]] = defaultdict(lambda: ["", "", 0, 0])
                    for r in await conn.execute(_old_breakdown(sid, period, by, per,
                                                               dialect)):
                        when = r.slot if per == "day" else f"{int(r.slot):02d}"
                        cells[(r.key, when)] = (int(r.quantity), int(r.amount))
                        item = items[r.key]
                        item[0], item[1] = r.name or r.key, r.category or ""
                        item[2] += int(r.quantity)
                        item[3] += int(r.amount)
                    assert {(c.key, c.when): (c.quantity, c.amount)
                            for c in got.cells} == cells, (a, b, by, per)
                    assert {i.key: [i.name, i.category, i.quantity, i.amount]
                            for i in got.items} == dict(items), (a, b, by, per)
            for n in range((last - first).days + 1):
                day = first + timedelta(days=n)
                want = await _old_balances(conn, sid, day)
                for backward in (False, True, None):
                    got_b = await balances_at(conn, sid, day, RIYADH, limit=1000,
                                              backward=backward)
                    assert {r.wallet_id: r.balance for r in got_b.rows} == want, (day, backward)
                    assert got_b.total == sum(want.values())
    finally:
        await engine.dispose()
