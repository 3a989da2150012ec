"""Money bounds the server enforces itself (issue 11), on both databases.

A till is trusted for what it saw, not for its clock, its settings or its arithmetic: a sale
above the school's per-sale cap is applied and flagged; no movement of money may take a
wallet's balance past the server's floor or ceiling (so no balance or sum of them overflows
int64); a sale dated outside the window a till may sell in is flagged ``clock_skew`` and
counts against the daily limit on the day the server received it; a time at the ends of the
calendar is answered per sale and never blocks a terminal's queue; a till re-sending another
till's sale verbatim gets that seq accounted for.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from shared.protocol import PaymentEvent, Sale
from sync_server.ledger import bounds, money_ops
from sync_server.ledger.audit import audit
from sync_server.ledger.judge import content_hash
from sync_server.ledger.payments import Policy, apply_event
from sync_server.records import update_settings
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import payments, sales, wallets
from tests.admin.conftest import query
from tests.admin.test_webhook import deliver, event

from .conftest_helpers import new_code
from .helpers import enroll, push, sale, snapshot, void_of

RIYADH = ZoneInfo("Asia/Riyadh")  # the demo schools' time zone


@pytest.fixture
async def device(client: Any, demo: dict[str, Any]) -> dict[str, Any]:
    return await enroll(client, demo["schools"][0]["enrollment_code"])


@pytest.fixture
def school(demo: dict[str, Any]) -> dict[str, Any]:
    return dict(demo["schools"][0])


async def _balance(db_url: str, wallet_id: str) -> int:
    rows = await query(db_url, sa.select(wallets.c.balance)
                       .where(wallets.c.wallet_id == wallet_id))
    return int(rows[0].balance)


async def _audit_ok(db_url: str) -> dict[str, Any]:
    engine = create_engine(db_url)
    try:
        report = await audit(engine)
    finally:
        await engine.dispose()
    assert report["ok"], [{k: v for k, v in s.items() if v and k != "school_id"}
                          for s in report["schools"]]
    return report


def _today() -> str:
    return datetime.now(UTC).astimezone(RIYADH).date().isoformat()


def _priced(school: dict[str, Any], seq: int, unit_price: int, quantity: int = 1,
            **override: Any) -> dict[str, Any]:
    """A sale of demo product 0 at a price the till chose (flagged price_mismatch)."""
    line = {"product_id": school["products"][0]["product_id"],
            "name": school["products"][0]["name"], "quantity": quantity,
            "unit_price": unit_price}
    return sale(school, seq, lines=[line], total=quantity * unit_price, **override)


# ---------------------------------------------------------------- the ends of the calendar

FAR_FUTURE = "9999-12-31T23:59:59-05:00"     # year 10000 in UTC
FAR_FUTURE_ELSEWHERE = "9999-12-31T22:59:59-06:00"  # the same instant, another offset
FAR_PAST = "0001-01-01T00:00:00+05:00"       # year 0 in UTC
LAST_UTC_HOUR = "9999-12-31T23:00:00+00:00"  # fine in UTC, year 10000 in Riyadh


async def test_times_at_the_ends_of_the_calendar_are_answered_per_sale(
        client: Any, device: dict[str, Any], school: dict[str, Any], db_url: str) -> None:
    token = device["device_token"]
    batch = [sale(school, 1, wallet=1),
             sale(school, 2, wallet=1, created_at=datetime.fromisoformat(FAR_FUTURE)),
             sale(school, 3, wallet=2, created_at=datetime.fromisoformat(FAR_PAST)),
             sale(school, 4, wallet=0, created_at=datetime.fromisoformat(LAST_UTC_HOUR)),
             sale(school, 5, wallet=1)]
    first = await push(client, token, batch)  # was a 500 for every retry: a blocked queue
    assert [r["status"] for r in first["results"]] == ["applied"] * 5
    assert [("clock_skew" in r["flags"]) for r in first["results"]] == [
        False, True, True, True, False]
    assert (first["acked_seq"], first["missing_seqs"]) == (5, [])

    again = await push(client, token, batch)
    assert [r["status"] for r in again["results"]] == ["duplicate"] * 5
    assert [r["flags"] for r in again["results"]] == [r["flags"] for r in first["results"]]
    # "Identical" compares the instant even where UTC cannot write it down.
    shifted = dict(batch[1], created_at=FAR_FUTURE_ELSEWHERE)
    assert (await push(client, token, [shifted]))["results"][0]["status"] == "duplicate"
    moved = dict(batch[1], created_at="9999-12-31T23:59:58-05:00")
    assert (await push(client, token, [moved]))["results"][0]["status"] == "conflict"

    # Stored where the server's calendar (and every time zone an admin reads it in) can hold
    # it, on the day the server received it; the terminal's own words kept in the detail.
    rows = {r.ref: r for r in await query(db_url, sa.select(
        sales.c.ref, sales.c.created_at, sales.c.business_day, sales.c.detail))}
    assert rows[batch[1]["ref"]].created_at == bounds.LATEST_STORED
    assert rows[batch[2]["ref"]].created_at == bounds.EARLIEST_STORED
    assert rows[batch[3]["ref"]].created_at == bounds.LATEST_STORED
    assert FAR_FUTURE in rows[batch[1]["ref"]].detail
    for s in batch[1:4]:
        assert rows[s["ref"]].business_day == _today()
    assert rows[batch[0]["ref"]].detail is None

    # A void of such a sale still gives the money back, once.
    undo = await push(client, token, [void_of(batch[1], 6)])
    assert undo["results"][0]["status"] == "applied"
    await _audit_ok(db_url)


def test_content_hash_of_a_representable_time_never_changes() -> None:
    """Stored hashes decide replay against conflict: the fallback for times UTC cannot hold
    must leave every other sale's hash exactly as it was."""
    body = {"ref": "0193a0e4-7c1a-7cc0-9a39-1f0b6f6d2a11", "seq": 42, "kind": "sale",
            "voids": None, "created_at": "2026-11-22T10:15:03.120+03:00", "cashier_id": "csh_1",
            "wallet_id": "wal_1", "credential_uid": "04A1B2C3D4E5F6",
            "lines": [{"product_id": "prd_1", "name": "Water 330ml", "quantity": 2,
                       "unit_price": 150}], "total": 300, "offline": True}
    one = Sale.model_validate_json(json.dumps(body))
    assert content_hash(one) == (
        "3709de1ca6e99623ea05e380b9dde4b9662037bac3ee26b15d14fdb65da3d631")
    edge = one.model_copy(update={"created_at": datetime.fromisoformat(
        "9999-12-31T23:59:59.999999+00:00")})
    assert content_hash(edge) == (
        "949436c9581d59cac4893055d926864f03bd3d35992666646d1a4f65b0dd0552")
    past = one.model_copy(update={"created_at": datetime.fromisoformat(FAR_PAST)})
    also = one.model_copy(update={"created_at": datetime.fromisoformat(
        "0001-01-01T01:00:00+06:00")})  # the same instant as FAR_PAST
    assert content_hash(past) == content_hash(also) != content_hash(one)


# ---------------------------------------------------------------- backdated and future sales


async def test_backdated_and_future_sales_are_flagged_and_count_on_the_day_received(
        client: Any, device: dict[str, Any], school: dict[str, Any], db_url: str) -> None:
    token = device["device_token"]  # wallet 0: daily limit 1500; product 5 costs 1500
    now = datetime.now(UTC)
    assert school["wallets"][0]["daily_limit"] == 1500
    inside = sale(school, 1, wallet=1, created_at=now - timedelta(hours=71))
    backdated = sale(school, 2, wallet=0, items=(5,), created_at=now - timedelta(days=4))
    today = sale(school, 3, wallet=0, items=(0,))
    first = await push(client, token, [inside, backdated, today])
    assert first["results"][0]["flags"] == []  # within the school's 72 h offline window
    assert first["results"][1]["flags"] == ["clock_skew"]
    # The backdated lunch is counted today, where the server can vouch for it.
    assert first["results"][2]["flags"] == ["daily_limit_exceeded"]
    rows = {r.ref: r.business_day for r in await query(db_url, sa.select(
        sales.c.ref, sales.c.business_day))}
    assert rows[backdated["ref"]] == _today()
    assert rows[inside["ref"]] == inside_day(now - timedelta(hours=71))
    mine = {w["wallet_id"]: w for w in (await snapshot(client, token))["wallets"]}
    assert mine[school["wallets"][0]["wallet_id"]]["spent_today"] == (
        1500 + school["products"][0]["price"])

    # Tomorrow's date from a till whose clock runs ahead counts today too.
    later = sale(school, 4, wallet=3, items=(5,), created_at=now + timedelta(days=2))
    after = sale(school, 5, wallet=3, items=(0,))
    second = await push(client, token, [later, after])
    assert second["results"][0]["flags"] == ["clock_skew"]
    assert second["results"][1]["flags"] == ["daily_limit_exceeded"]
    await _audit_ok(db_url)


def inside_day(moment: datetime) -> str:
    return moment.astimezone(RIYADH).date().isoformat()


async def test_the_offline_window_is_the_schools_own_setting(
        client: Any, device: dict[str, Any], school: dict[str, Any], db_url: str) -> None:
    engine = create_engine(db_url)
    async with engine.begin() as conn:
        await update_settings(conn, school["school_id"], offline_max_hours=200)
    await engine.dispose()
    old = sale(school, 1, wallet=1, created_at=datetime.now(UTC) - timedelta(hours=190))
    result = await push(client, device["device_token"], [old])
    assert result["results"][0]["flags"] == []


# ---------------------------------------------------------------- the per-sale cap


async def test_a_sale_above_the_schools_cap_is_applied_and_flagged(
        client: Any, device: dict[str, Any], school: dict[str, Any], db_url: str) -> None:
    engine = create_engine(db_url)
    async with engine.begin() as conn:
        await update_settings(conn, school["school_id"], offline_max_sale=3000)
    await engine.dispose()
    token = device["device_token"]
    at_cap = sale(school, 1, wallet=1, items=(5,), qty=2)      # 3000
    above = sale(school, 2, wallet=1, items=(5,), qty=3)       # 4500: the food was handed over
    result = await push(client, token, [at_cap, above])
    assert [r["status"] for r in result["results"]] == ["applied", "applied"]
    assert "sale_cap_exceeded" not in result["results"][0]["flags"]
    assert "sale_cap_exceeded" in result["results"][1]["flags"]
    # The money moved: the flag asks for review, it does not refuse.
    assert await _balance(db_url, school["wallets"][1]["wallet_id"]) == (
        school["wallets"][1]["balance"] - 7500)
    undo = await push(client, token, [void_of(above, 3)])
    assert undo["results"][0]["flags"] == []  # a void gives money back: no cap applies
    rows = await query(db_url, sa.select(sales.c.needs_review)
                       .where(sales.c.ref == above["ref"]))
    assert rows[0].needs_review


# ---------------------------------------------------------------- balance floor and ceiling


async def test_no_sale_takes_a_balance_below_the_floor(
        client: Any, device: dict[str, Any], school: dict[str, Any], db_url: str) -> None:
    token = device["device_token"]
    wallet = school["wallets"][1]
    start = await _balance(db_url, wallet["wallet_id"])
    huge = _priced(school, 1, 10**8, 10_000, wallet=1)      # 10**12, the wire's largest sale
    to_floor = _priced(school, 2, start, wallet=1)            # lands exactly on the floor
    past = _priced(school, 3, 1, wallet=1)                    # one minor unit past it
    result = await push(client, token, [huge, to_floor, past])
    assert [(r["status"], r["code"]) for r in result["results"]] == [
        ("applied", None), ("applied", None), ("rejected", "balance_out_of_bounds")]
    assert result["results"][1]["balance_after"] == bounds.BALANCE_FLOOR
    assert result["results"][2]["balance_after"] is None
    assert result["results"][2]["detail"]
    assert result["acked_seq"] == 3  # refused, but stored: the queue moves on
    assert await _balance(db_url, wallet["wallet_id"]) == bounds.BALANCE_FLOOR
    replay = await push(client, token, [past])
    assert replay["results"][0]["original_status"] == "rejected"
    assert replay["results"][0]["code"] == "balance_out_of_bounds"
    # Many more of the largest sale change nothing: the balance cannot run off int64.
    more = [_priced(school, 4 + i, 10**8, 10_000, wallet=1) for i in range(5)]
    flood = await push(client, token, more)
    assert {r["code"] for r in flood["results"]} == {"balance_out_of_bounds"}
    assert await _balance(db_url, wallet["wallet_id"]) == bounds.BALANCE_FLOOR
    # A void brings it back; voids are checked against the ceiling.
    assert (await push(client, token, [void_of(huge, 9)]))["results"][0]["status"] == "applied"
    await _audit_ok(db_url)


async def _topup(db_url: str, school_id: str, wallet_id: str, amount: int, key: str,
                 kind: str = "topup") -> money_ops.OpOutcome:
    engine = create_engine(db_url)
    try:
        return await money_ops.run(lambda: engine.begin(), money_ops.MoneyOp(
            school_id=school_id, kind=kind, wallet_id=wallet_id, amount=amount,
            idem_key=key, actor="test"))
    finally:
        await engine.dispose()


async def test_admin_money_and_voids_stop_at_the_ceiling_and_floor(
        client: Any, device: dict[str, Any], school: dict[str, Any], db_url: str) -> None:
    wallet = school["wallets"][2]
    wid, sid = wallet["wallet_id"], school["school_id"]
    lunch = sale(school, 1, wallet=2, items=(5,))
    await push(client, device["device_token"], [lunch])
    room = bounds.BALANCE_CEILING - await _balance(db_url, wid)
    filled = await _topup(db_url, sid, wid, room, "fill")       # up to the ceiling exactly
    assert filled.balance_after == bounds.BALANCE_CEILING
    with pytest.raises(money_ops.OpRefused) as over:
        await _topup(db_url, sid, wid, 1, "one-more")
    assert over.value.code == "balance_out_of_bounds"
    # The lunch's void would lift the balance past the ceiling: refused, kept, nothing moves.
    undo = await push(client, device["device_token"], [void_of(lunch, 2)])
    assert (undo["results"][0]["status"], undo["results"][0]["code"]) == (
        "rejected", "balance_out_of_bounds")
    assert undo["acked_seq"] == 2
    with pytest.raises(money_ops.OpRefused) as under:
        await _topup(db_url, sid, wid, bounds.BALANCE_FLOOR - bounds.BALANCE_CEILING - 1, "sink",
                     kind="adjustment")
    assert under.value.code == "balance_out_of_bounds"
    assert await _balance(db_url, wid) == bounds.BALANCE_CEILING
    await _audit_ok(db_url)


async def test_gateway_money_past_the_bounds_is_held(
        client: Any, school: dict[str, Any], db_url: str) -> None:
    wid = school["wallets"][4]["wallet_id"]
    engine = create_engine(db_url)
    no_ceiling = Policy(hold_above=None)  # so only the balance bound can hold it
    try:
        room = bounds.BALANCE_CEILING - await _balance(db_url, wid)
        fill = event(wid, "evt_fill", amount=room, reference="ref_fill")
        credited = await apply_event(lambda: engine.begin(), _event(fill), source="webhook",
                                     policy=no_ceiling)
        assert (credited.status, credited.balance_after) == ("credited", bounds.BALANCE_CEILING)
        more = event(wid, "evt_more", amount=1, reference="ref_more")
        held = await apply_event(lambda: engine.begin(), _event(more), source="webhook",
                                 policy=no_ceiling)
        assert (held.status, held.code) == ("held", "balance_out_of_bounds")
        state = await query(db_url, sa.select(payments.c.state, payments.c.credited)
                            .where(payments.c.reference == "ref_more"))
        assert (state[0].state, int(state[0].credited)) == ("held", 0)
    finally:
        await engine.dispose()
    assert await _balance(db_url, wid) == bounds.BALANCE_CEILING
    await _audit_ok(db_url)


def _event(body: dict[str, Any]) -> PaymentEvent:
    return PaymentEvent.model_validate_json(json.dumps(body))


async def test_a_signed_top_up_of_10_12_is_held_for_review(
        client: Any, school: dict[str, Any], db_url: str) -> None:
    wid = school["wallets"][5]["wallet_id"]
    before = await _balance(db_url, wid)
    resp = await deliver(client, event(wid, "evt_huge", amount=10**12, reference="huge"))
    assert resp.status == 202, await resp.text()
    body = await resp.json()
    assert (body["status"], body["reason"]) == ("held_for_review", "amount_above_limit")
    assert await _balance(db_url, wid) == before
    await _audit_ok(db_url)


# ---------------------------------------------------------------- another device's sale


async def test_a_sale_resent_by_another_device_leaves_no_gap_in_its_seqs(
        client: Any, device: dict[str, Any], school: dict[str, Any], db_url: str) -> None:
    original = sale(school, 1, wallet=1)
    await push(client, device["device_token"], [original])
    other = await enroll(client, await new_code(db_url, school["school_id"]), "Counter 2")
    token = other["device_token"]
    relayed = await push(client, token, [original])  # verbatim: A's ref, seq 1
    assert relayed["results"][0]["status"] == "duplicate"
    assert (relayed["acked_seq"], relayed["missing_seqs"]) == (1, [])
    own = await push(client, token, [sale(school, 2, wallet=2)])
    assert (own["acked_seq"], own["missing_seqs"]) == (2, [])
    # Its seq 1 is spoken for: another sale under it is a reused seq.
    reused = await push(client, token, [sale(school, 1, wallet=2)])
    assert reused["results"][0]["code"] == "seq_reused"
    report = await _audit_ok(db_url)
    assert all(not s["missing_seqs"] for s in report["schools"])
