"""Report queries against a ledger filled through the real push API and the console's reversal.

Every expected figure is computed here, in SQL written in the test over ``postings`` (what the
money actually did), never by the report functions themselves.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from sync_server.ledger import money_ops as ledger_ops
from sync_server.reports import periods, rollup_source
from sync_server.reports.balances import balances_at
from sync_server.reports.breakdown import breakdown
from sync_server.reports.local_time import offsets
from sync_server.reports.money_flows import money_flows
from sync_server.reports.zreport import Figures, z_report
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import money_ops, postings, sales, wallets
from tests.admin.conftest import as_role
from tests.server.conftest_helpers import new_code
from tests.server.helpers import enroll, push, sale, void_of

RIYADH = "Asia/Riyadh"


# ------------------------------------------------------------------ periods (no database)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("now", "preset", "first", "last"), [
    # 20:59 UTC is 23:59 in Riyadh (UTC+3), 21:00 UTC is already the next local day.
    ("2026-03-04T20:59:59", "today", "2026-03-04", "2026-03-04"),
    ("2026-03-04T21:00:00", "today", "2026-03-05", "2026-03-05"),
    ("2026-03-04T21:00:00", "yesterday", "2026-03-04", "2026-03-04"),
    # UTC midnight is 03:00 local: still the same local day on both sides.
    ("2026-03-04T23:59:59", "today", "2026-03-05", "2026-03-05"),
    ("2026-03-05T00:00:00", "today", "2026-03-05", "2026-03-05"),
    # 2026-03-05 is a Thursday: the school week began on Sunday the 1st.
    ("2026-03-05T10:00:00", "this_week", "2026-03-01", "2026-03-05"),
    # Saturday night 23:30 local is still the old week; Sunday 00:00 local starts a new one.
    ("2026-03-07T20:30:00", "this_week", "2026-03-01", "2026-03-07"),
    ("2026-03-07T21:00:00", "this_week", "2026-03-08", "2026-03-08"),
    ("2026-03-01T10:00:00", "this_month", "2026-03-01", "2026-03-01"),
    # 28 Feb 22:00 UTC is 1 Mar 01:00 in Riyadh: last month is February, this month March.
    ("2026-02-28T22:00:00", "last_month", "2026-02-01", "2026-02-28"),
    ("2026-02-28T22:00:00", "this_month", "2026-03-01", "2026-03-01"),
    ("2026-01-15T10:00:00", "last_month", "2025-12-01", "2025-12-31"),
])
def test_presets_in_the_school_time_zone(now: str, preset: str, first: str, last: str) -> None:
    p = periods.resolve(preset, RIYADH, at(now))
    assert (p.first.isoformat(), p.last.isoformat()) == (first, last)
    # The bounds are local midnights: 21:00 UTC the evening before, in Riyadh.
    assert p.start == datetime.fromisoformat(first).replace(tzinfo=UTC) - timedelta(hours=3)
    assert p.end == (datetime.fromisoformat(last).replace(tzinfo=UTC) + timedelta(hours=21))


def test_a_day_in_a_time_zone_with_dst_has_its_own_length() -> None:
    day = periods.day_period(date(2026, 3, 29), "Europe/Berlin")  # clocks go forward
    assert day.end - day.start == timedelta(hours=23)


def test_custom_ranges_are_checked() -> None:
    now = at("2026-03-05T10:00:00")
    p = periods.from_query({"from": "2026-01-01", "to": "2026-01-31"}, RIYADH, now)
    assert (p.preset, p.days) == ("custom", 31)
    for query, code in [({"from": "2026-02-01", "to": "2026-01-01"}, "range_reversed"),
                        ({"from": "2025-01-01", "to": "2026-03-01"}, "range_too_long"),
                        ({"from": "2026-01-01"}, "range_incomplete"),
                        ({"from": "2026-13-01", "to": "2026-01-01"}, "bad_date"),
                        ({"from": "0001-01-01", "to": "0001-01-02"}, "bad_date"),
                        ({"period": "forever"}, "unknown_preset")]:
        with pytest.raises(periods.PeriodError) as caught:
            periods.from_query(query, RIYADH, now)
        assert caught.value.code == code, query
    longest = periods.from_query({"from": "2025-01-01", "to": "2026-02-04"}, RIYADH, now)
    assert longest.days == periods.MAX_DAYS
    assert periods.from_query({}, RIYADH, now).preset == periods.DEFAULT_PRESET


# ------------------------------------------------------------------ Z report


async def _seed_day(client: Any, demo: dict[str, Any], db_url: str) -> dict[str, Any]:
    """Sales on three tills by two cashiers, two voids, one admin reversal, a rejected void,
    and a third till that sold offline and synced late (with a gap filled last)."""
    school = demo["schools"][0]
    sid = school["school_id"]
    tills = [await enroll(client, await new_code(db_url, sid), f"Till {n}") for n in "ABC"]
    a, b, c = (t["device_token"] for t in tills)
    now = datetime.now(UTC)

    def made(seconds_ago: int, **kw: Any) -> dict[str, Any]:
        return sale(school, created_at=now - timedelta(seconds=seconds_ago), **kw)

    a1 = made(50, seq=1, wallet=1, items=(0, 1), offline=False)
    a2 = made(49, seq=2, wallet=2, items=(2,), cashier=1, offline=False)
    a3 = made(48, seq=3, wallet=4, items=(1,), qty=2, offline=False)
    await push(client, a, [a1, a2, a3, void_of(a2, 4, offline=False)])
    b1 = made(45, seq=1, wallet=5, items=(0,), cashier=1, offline=False)
    b2 = made(44, seq=2, wallet=7, items=(3,), offline=False)
    # A void of a sale the server never saw: rejected, counted, no money.
    ghost = made(43, seq=99, wallet=7)
    await push(client, b, [b1, b2, void_of(ghost, 3, offline=False)])
    # Till C sold offline, earlier than the others, and reaches the server last, in pieces.
    c1 = made(58, seq=1, wallet=8, items=(0, 2))
    c2 = made(57, seq=2, wallet=9, items=(1,), cashier=1)
    c3 = made(56, seq=3, wallet=10, items=(3,))
    c4 = made(55, seq=4, wallet=11, items=(2,), cashier=1)
    gap = await push(client, c, [c1, c2, c4])
    assert gap["missing_seqs"] == [3]
    seen = {"gap_seen": await _report(db_url, sid)}
    await push(client, c, [c3, void_of(c1, 5)])
    admin = await as_role(client, demo, "admin")
    resp = await admin.post(f"/admin/sales/{b2['ref']}/reverse", {"reason": "wrong item"})
    assert resp.status == 303 and "err" not in resp.cookies.get("pos_flash", "").value
    return {"school": school, "tills": tills, **seen}


async def _report(db_url: str, sid: str, day: date | None = None,
                  now: datetime | None = None) -> Any:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            day = day or datetime.now(ZoneInfo(RIYADH)).date()
            return await z_report(conn, sid, day, now=now)
    finally:
        await engine.dispose()


async def _expected(db_url: str, sid: str, day: date) -> dict[tuple[str, str], dict[str, int]]:
    """Per (device, cashier): the day's money from the postings, in the test's own SQL."""
    tz = ZoneInfo(RIYADH)
    start = datetime.combine(day, datetime.min.time(), tz).astimezone(UTC)
    end = start + timedelta(days=1)
    s = sales.alias("s")
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            # Sales and voids: the posting of each, on its sale's school day.
            rows = await conn.execute(
                sa.select(s.c.device_id, s.c.cashier_id, postings.c.kind, s.c.offline,
                          sa.func.count(), sa.func.sum(postings.c.amount))
                .select_from(postings.join(s, sa.and_(s.c.school_id == postings.c.school_id,
                                                      s.c.ref == postings.c.sale_ref)))
                .where(postings.c.school_id == sid, postings.c.kind.in_(["sale", "void"]),
                       s.c.business_day == day.isoformat())
                .group_by(s.c.device_id, s.c.cashier_id, postings.c.kind, s.c.offline))
            for device, cashier, kind, offline, n, amount in rows:
                got = out[(device, cashier)]
                name = "sales" if kind == "sale" else "voids"
                got[f"{name}_count"] += n
                got[f"{name}_amount"] += amount
                if offline and kind == "sale":
                    got["offline_count"] += n
                    got["offline_amount"] += amount
            # Reversals: the posting's own time, against the reversed sale's till and cashier.
            rows = await conn.execute(
                sa.select(s.c.device_id, s.c.cashier_id, sa.func.count(),
                          sa.func.sum(postings.c.amount))
                .select_from(postings.join(s, sa.and_(s.c.school_id == postings.c.school_id,
                                                      s.c.ref == postings.c.sale_ref)))
                .where(postings.c.school_id == sid, postings.c.kind == "reversal",
                       postings.c.posted_at >= start, postings.c.posted_at < end)
                .group_by(s.c.device_id, s.c.cashier_id))
            for device, cashier, n, amount in rows:
                out[(device, cashier)]["reversals_count"] += n
                out[(device, cashier)]["reversals_amount"] += amount
            rows = await conn.execute(
                sa.select(sales.c.device_id, sales.c.cashier_id, sa.func.count())
                .where(sales.c.school_id == sid, sales.c.status == "rejected",
                       sales.c.business_day == day.isoformat())
                .group_by(sales.c.device_id, sales.c.cashier_id))
            for device, cashier, n in rows:
                out[(device, cashier)]["rejected_count"] += n
    finally:
        await engine.dispose()
    return out


def _fold(expected: dict[tuple[str, str], dict[str, int]], index: int) -> dict[str, Figures]:
    folded: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for key, figures in expected.items():
        for name, value in figures.items():
            folded[key[index]][name] += value
    return {k: Figures(**v) for k, v in folded.items()}


async def test_z_report_equals_the_postings(client: Any, demo: dict[str, Any],
                                            db_url: str) -> None:
    seeded = await _seed_day(client, demo, db_url)
    sid = seeded["school"]["school_id"]
    report = await _report(db_url, sid)
    expected = await _expected(db_url, sid, report.day)
    per_device, per_cashier = _fold(expected, 0), _fold(expected, 1)
    # The day is real: three tills, both cashiers, every kind of figure.
    assert len(per_device) == 3 and len(per_cashier) == 2
    total = sum(per_device.values(), Figures())
    assert min(total.voids_count, total.reversals_count, total.offline_count,
               total.rejected_count) >= 1

    assert {t.device_id: t.figures for t in report.terminals if t.figures != Figures()} \
        == per_device
    assert {c.cashier_id: c.figures for c in report.cashiers} == per_cashier
    assert report.totals == total
    assert report.totals.net == total.sales_amount - total.voids_amount \
        - total.reversals_amount
    # Net is what the revenue account kept from the day's tills: sales in, voids and the
    # reversal out (postings to and from it, counted independently of the report).
    async with _engine(db_url) as conn:
        revenue = f"{sid}:revenue"
        kept = (await conn.execute(sa.select(sa.func.sum(sa.case(
            (postings.c.to_account == revenue, postings.c.amount),
            else_=-postings.c.amount))).where(
                postings.c.school_id == sid, postings.c.kind.in_(["sale", "void", "reversal"]),
                sa.or_(postings.c.to_account == revenue,
                       postings.c.from_account == revenue)))).scalar_one()
    assert report.totals.net == kept


async def test_z_report_names_what_a_till_still_owes(client: Any, demo: dict[str, Any],
                                                     db_url: str) -> None:
    seeded = await _seed_day(client, demo, db_url)
    sid = seeded["school"]["school_id"]
    late = seeded["tills"][2]["device_id"]
    # While C's seq 3 was missing, the report named it and warned about the till.
    before = {t.device_id: t for t in seeded["gap_seen"].terminals}
    assert before[late].missing_seqs == (3,) and before[late].max_seq == 4
    assert before[late].acked_seq == 2 and before[late].may_be_incomplete
    after = await _report(db_url, sid)
    now = {t.device_id: t for t in after.terminals}
    assert now[late].missing_seqs == () and now[late].acked_seq == now[late].max_seq == 5
    # Late sales land on the day they were made, so the day's total grew.
    assert after.totals.sales_count == before[late].figures.sales_count + 1 + sum(
        t.figures.sales_count for t in seeded["gap_seen"].terminals if t.device_id != late)
    assert not after.day_over
    assert not any(t.may_be_incomplete for t in after.terminals
                   if t.device_id in {x["device_id"] for x in seeded["tills"]})
    # Read the next morning, every till last heard from before midnight may owe the day.
    tomorrow = await _report(db_url, sid, after.day, now=after.period.end + timedelta(hours=8))
    assert tomorrow.day_over and all(t.may_be_incomplete for t in tomorrow.terminals)
    assert tomorrow.totals == after.totals


def _engine(db_url: str) -> Any:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def opened() -> Any:
        engine = create_engine(db_url)
        try:
            async with engine.connect() as conn:
                yield conn
        finally:
            await engine.dispose()

    return opened()


async def test_z_report_of_an_empty_day(client: Any, demo: dict[str, Any],
                                        db_url: str) -> None:
    sid = demo["schools"][0]["school_id"]
    report = await _report(db_url, sid, date(2020, 1, 1))
    assert report.totals == Figures() and report.cashiers == ()
    assert report.day_over


# ------------------------------------------------------------------ breakdowns


async def test_breakdowns_add_up_to_the_day(client: Any, demo: dict[str, Any],
                                            db_url: str) -> None:
    seeded = await _seed_day(client, demo, db_url)
    school = seeded["school"]
    sid = school["school_id"]
    report = await _report(db_url, sid)
    period = periods.day_period(report.day, RIYADH)
    # Expected quantities per product, from the applied sales' and voids' lines and the
    # reversed sale's lines, read back from the sales table in the test.
    async with _engine(db_url) as conn:
        rows = (await conn.execute(sa.select(sales.c.kind, sales.c.lines).where(
            sales.c.school_id == sid, sales.c.status == "applied",
            sales.c.business_day == report.day.isoformat()))).all()
        reversed_lines = (await conn.execute(
            sa.select(sales.c.lines).select_from(sales.join(
                money_ops, sa.and_(money_ops.c.sale_ref == sales.c.ref,
                                   money_ops.c.school_id == sales.c.school_id)))
            .where(money_ops.c.kind == "reversal", money_ops.c.school_id == sid))).all()
        results = {(by, per): await breakdown(conn, sid, period, by=by, per=per)
                   for by in ("product", "category") for per in ("day", "hour")}
    qty: dict[str, int] = defaultdict(int)
    amount: dict[str, int] = defaultdict(int)
    for sign, lines in [(-1 if k == "void" else 1, ln) for k, ln in rows] + \
            [(-1, r.lines) for r in reversed_lines]:
        for line in lines:
            qty[line["product_id"]] += sign * line["quantity"]
            amount[line["product_id"]] += sign * line["quantity"] * line["unit_price"]
    category = {p["product_id"]: p["category"] for p in school["products"]}
    by_category: dict[str, int] = defaultdict(int)
    for pid, value in amount.items():
        by_category[category[pid]] += value
    for (by, per), result in results.items():
        # Every breakdown's total is the day's net, which is also the Z report's.
        assert result.amount == report.totals.net, (by, per)
        assert sum(v for _, v in result.series) == result.amount
        assert sum(c.amount for c in result.cells) == result.amount
        assert len(result.series) == (1 if per == "day" else 24)
        if by == "product":
            assert {i.key: i.quantity for i in result.items} == \
                {k: v for k, v in qty.items() if v or amount[k]}
            assert {i.key: i.amount for i in result.items} == \
                {k: v for k, v in amount.items() if v or qty[k]}
        else:
            assert {i.key: i.amount for i in result.items} == \
                {k: v for k, v in by_category.items() if v}
    hour = datetime.now(ZoneInfo(RIYADH)).hour
    hourly = dict(results[("product", "hour")].series)
    # Everything was sold within the last minute (the hour may just have turned).
    assert hourly[f"{hour:02d}"] + hourly[f"{(hour - 1) % 24:02d}"] == report.totals.net


def test_summer_time_offsets_are_found_to_the_minute() -> None:
    week = periods.custom(date(2026, 3, 25), date(2026, 4, 2), "Europe/Berlin")
    spans = offsets(week)
    assert [(at.isoformat(), off) for at, off in spans] == [
        ("2026-03-24T23:00:00+00:00", 3600), ("2026-03-29T01:00:00+00:00", 7200)]
    assert offsets(periods.custom(date(2026, 1, 1), date(2026, 12, 31), RIYADH)) == [
        (datetime(2025, 12, 31, 21, tzinfo=UTC), 10800)]


# ------------------------------------------------------------------ balances at a date


async def test_balances_at_a_past_date_equal_the_ledger_replayed(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    seeded = await _seed_day(client, demo, db_url)
    school = seeded["school"]
    sid = school["school_id"]
    wallet = school["wallets"][3]["wallet_id"]
    engine = create_engine(db_url)
    try:  # a wallet below zero, by an admin adjustment
        await ledger_ops.run(engine.begin, ledger_ops.MoneyOp(
            school_id=sid, kind="adjustment", wallet_id=wallet, amount=-20_000,
            idem_key="test:negative", actor="test"))
        # Spread the school's history over the last twelve days: each posting moves back
        # a number of days taken from its ID, so every day has its own balances.
        async with engine.begin() as conn:
            rows = (await conn.execute(sa.select(postings.c.posting_id, postings.c.posted_at)
                                       .where(postings.c.school_id == sid)
                                       .order_by(postings.c.posting_id))).all()
            for n, (pid, posted) in enumerate(rows):
                await conn.execute(sa.update(postings).where(postings.c.posting_id == pid)
                                   .values(posted_at=posted - timedelta(days=n % 12,
                                                                        hours=n % 5)))
            await conn.execute(sa.update(wallets).where(wallets.c.school_id == sid)
                               .values(created_at=datetime.now(UTC) - timedelta(days=20)))
            # History rewritten behind the ledger's back: its rollup rebuilt as the ledger
            # would have kept it (the expected figures below still come from the postings).
            await rollup_source.rebuild(conn, sid)
    finally:
        await engine.dispose()
    tz = ZoneInfo(RIYADH)
    today = datetime.now(tz).date()
    async with _engine(db_url) as conn:
        for back in (13, 11, 7, 3, 1, 0):
            day = today - timedelta(days=back)
            end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz)
            replayed = {w: 0 for w in (await conn.execute(sa.select(wallets.c.wallet_id).where(
                wallets.c.school_id == sid))).scalars()}
            for row in await conn.execute(sa.select(postings).where(
                    postings.c.school_id == sid, postings.c.posted_at < end)):
                if row.to_account in replayed:
                    replayed[row.to_account] += row.amount
                if row.from_account in replayed:
                    replayed[row.from_account] -= row.amount
            got = await balances_at(conn, sid, day, RIYADH, limit=1000)
            assert {r.wallet_id: r.balance for r in got.rows} == replayed, day
            for backward in (False, True):  # both replays, whichever the report picked
                other = await balances_at(conn, sid, day, RIYADH, limit=1000,
                                          backward=backward)
                assert {r.wallet_id: r.balance for r in other.rows} == replayed
            assert got.total == sum(replayed.values()) and got.count == len(replayed)
            negatives = {w: b for w, b in replayed.items() if b < 0}
            assert (got.negative_count, got.negative_total) == (
                len(negatives), sum(negatives.values()))
            only = await balances_at(conn, sid, day, RIYADH, negative_only=True,
                                     sort="balance")
            assert [r.balance for r in only.rows] == sorted(negatives.values())
            # Paging keeps the list's totals.
            page2 = await balances_at(conn, sid, day, RIYADH, limit=5, offset=5)
            assert (page2.count, page2.total) == (got.count, got.total)
            assert len(page2.rows) == min(5, max(got.count - 5, 0))
        assert replayed[wallet] < 0 and back == 0
        # Today's list without a date is the wallets' own balances, equal to the ledger.
        now = await balances_at(conn, sid, None, RIYADH, limit=1000)
        assert {r.wallet_id: r.balance for r in now.rows} == replayed


# ------------------------------------------------------------------ money flows


async def test_money_flows_carry_gateway_references(client: Any, demo: dict[str, Any],
                                                    db_url: str) -> None:
    from tests.admin.test_webhook import deliver, event

    school = demo["schools"][0]
    sid = school["school_id"]
    w1, w2 = school["wallets"][1]["wallet_id"], school["wallets"][2]["wallet_id"]
    for body in (event(w1, "evt_a", amount=5000, reference="pay_A"),
                 event(w2, "evt_b", amount=2500, reference="pay_B"),
                 event(w1, "evt_c", kind="refund.completed", amount=1000, reference="pay_A")):
        assert (await deliver(client, body)).status == 200
    engine = create_engine(db_url)
    try:
        await ledger_ops.run(engine.begin, ledger_ops.MoneyOp(
            school_id=sid, kind="topup", wallet_id=w2, amount=700, idem_key="test:cash",
            actor="test", reason="cash at the office"))
    finally:
        await engine.dispose()
    period = periods.resolve("today", RIYADH, datetime.now(UTC))
    counters = [f"{sid}:topup_clearing", f"{sid}:adjustments"]
    async with _engine(db_url) as conn:
        got = await money_flows(conn, sid, period, limit=1000)
        # Independently: every non-sale posting of the day, signed as seen from the wallet
        # (the demo's opening balances were posted today too, when the test database was made).
        into = postings.c.from_account.in_(counters)
        count, net, refunds = (await conn.execute(
            sa.select(sa.func.count(),
                      sa.func.sum(sa.case((into, postings.c.amount), else_=-postings.c.amount)),
                      sa.func.sum(sa.case((into, 0), else_=postings.c.amount)))
            .where(postings.c.school_id == sid,
                   postings.c.kind.in_(["topup", "refund", "chargeback", "opening",
                                        "payment_credit", "adjustment"]),
                   postings.c.posted_at >= period.start,
                   postings.c.posted_at < period.end))).one()
    assert (got.count, got.net, got.refunds_amount) == (count, net, refunds)
    assert got.refunds_amount == 1000 and len(got.rows) == got.count
    assert sum(d.net for d in got.days) == got.net
    assert sum(d.topups_count + d.refunds_count for d in got.days) == got.count
    refs = {(r.kind, r.reference, r.amount) for r in got.rows if r.kind != "opening"}
    assert {("payment.completed", "pay_A", 5000), ("refund.completed", "pay_A", -1000),
            ("payment.completed", "pay_B", 2500), ("topup", "cash at the office", 700)} == refs
    ascending = await _flows_sorted(db_url, sid, period)
    amounts = [r.amount for r in ascending.rows]
    assert amounts == sorted(amounts) and amounts[0] == -1000


async def _flows_sorted(db_url: str, sid: str, period: periods.Period) -> Any:
    async with _engine(db_url) as conn:
        return await money_flows(conn, sid, period, sort="amount", descending=False,
                                 limit=1000)
