"""Every result status, reject code and flag of ``POST /api/v1/sync/sales``, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from shared.ids import new_ref
from sync_server.ledger.audit import audit
from sync_server.records import update_wallet
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import postings, sale_conflicts, sales, wallets

from .helpers import enroll, push, sale, snapshot, void_of


@pytest.fixture
async def device(client: Any, demo: dict[str, Any]) -> dict[str, Any]:
    return await enroll(client, demo["schools"][0]["enrollment_code"])


@pytest.fixture
def school(demo: dict[str, Any]) -> dict[str, Any]:
    return dict(demo["schools"][0])


async def _balance(db_url: str, wallet_id: str) -> int:
    engine = create_engine(db_url)
    async with engine.connect() as conn:
        value = (await conn.execute(sa.select(wallets.c.balance)
                                    .where(wallets.c.wallet_id == wallet_id))).scalar_one()
    await engine.dispose()
    return int(value)


async def _audit_ok(db_url: str) -> dict[str, Any]:
    engine = create_engine(db_url)
    report = await audit(engine)
    await engine.dispose()
    assert report["ok"], report
    return report


async def test_applied_sale_moves_money_once_and_replay_is_duplicate(
        client: Any, device: dict[str, Any], school: dict[str, Any], db_url: str) -> None:
    token = device["device_token"]
    wallet = school["wallets"][1]
    batch = [sale(school, 1, wallet=1, items=(0, 3)), sale(school, 2, wallet=1, items=(1,))]
    first = await push(client, token, batch)
    spent = batch[0]["total"] + batch[1]["total"]
    assert [r["status"] for r in first["results"]] == ["applied", "applied"]
    assert first["results"][1]["balance_after"] == wallet["balance"] - spent
    assert first["results"][0]["flags"] == [] and first["results"][0]["code"] is None
    assert "original_status" not in first["results"][0]
    assert (first["acked_seq"], first["missing_seqs"]) == (2, [])

    replay = await push(client, token, batch)
    assert [r["status"] for r in replay["results"]] == ["duplicate", "duplicate"]
    for orig, again in zip(first["results"], replay["results"], strict=True):
        assert again["original_status"] == "applied"
        assert again["balance_after"] == orig["balance_after"]
        assert again["flags"] == orig["flags"] and again["code"] == orig["code"]
    assert await _balance(db_url, wallet["wallet_id"]) == wallet["balance"] - spent
    await _audit_ok(db_url)


async def test_identical_means_parsed_equal_not_byte_equal(
        client: Any, device: dict[str, Any], school: dict[str, Any]) -> None:
    when = datetime(2026, 11, 22, 10, 15, 3, 120000, tzinfo=UTC)
    original = sale(school, 1, wallet=1, created_at=when)
    await push(client, device["device_token"], [original])
    shifted = dict(original, created_at="2026-11-22T13:15:03.120+03:00")  # same instant
    again = await push(client, device["device_token"], [shifted])
    assert again["results"][0]["status"] == "duplicate"


async def test_changed_content_under_a_used_ref_is_a_conflict_kept_for_review(
        client: Any, device: dict[str, Any], school: dict[str, Any], db_url: str) -> None:
    token = device["device_token"]
    original = sale(school, 1, wallet=1)
    await push(client, token, [original])
    before = await _balance(db_url, school["wallets"][1]["wallet_id"])
    changed = dict(original, seq=2, lines=[dict(original["lines"][0], quantity=3)],
                   total=original["total"] * 3)
    result = await push(client, token, [changed])
    assert result["results"][0]["status"] == "conflict"
    assert result["results"][0]["balance_after"] is None
    assert result["acked_seq"] == 2  # the conflict is a stored outcome for seq 2
    again = await push(client, token, [changed])
    assert again["results"][0] == {**again["results"][0], "status": "duplicate",
                                   "original_status": "conflict"}
    assert await _balance(db_url, school["wallets"][1]["wallet_id"]) == before
    engine = create_engine(db_url)
    async with engine.connect() as conn:
        kept = (await conn.execute(sa.select(sale_conflicts.c.payload))).scalars().all()
    await engine.dispose()
    assert len(kept) == 1 and kept[0]["total"] == original["total"] * 3


async def test_wallet_of_another_school_is_rejected_and_moves_no_money(
        client: Any, device: dict[str, Any], demo: dict[str, Any], db_url: str) -> None:
    mine, other = demo["schools"][0], demo["schools"][1]
    foreign = other["wallets"][1]
    body = sale(mine, 1, wallet=1, wallet_id=foreign["wallet_id"],
                credential_uid=foreign["credential_uid"])
    result = await push(client, device["device_token"], [body])
    assert result["results"][0]["status"] == "rejected"
    assert result["results"][0]["code"] == "wallet_other_school"
    assert result["results"][0]["detail"]
    assert await _balance(db_url, foreign["wallet_id"]) == foreign["balance"]
    assert result["acked_seq"] == 1  # rejected sales are stored outcomes too
    replay = await push(client, device["device_token"], [body])
    assert replay["results"][0]["original_status"] == "rejected"
    assert replay["results"][0]["code"] == "wallet_other_school"


async def test_each_reject_code(client: Any, device: dict[str, Any], school: dict[str, Any],
                                db_url: str) -> None:
    engine = create_engine(db_url)
    async with engine.begin() as conn:
        await update_wallet(conn, school["school_id"], school["wallets"][5]["wallet_id"],
                            status="closed")
    await engine.dispose()
    token = device["device_token"]
    good = sale(school, 1, wallet=1)
    cases = {
        "wallet_unknown": sale(school, 2, wallet=1, wallet_id="wal_does_not_exist"),
        "wallet_closed": sale(school, 3, wallet=5),
        "total_mismatch": sale(school, 4, wallet=1, total=1),
        "product_unknown": sale(school, 5, wallet=1, lines=[
            {"product_id": "prd_nope", "name": "Ghost", "quantity": 1, "unit_price": 100}],
            total=100),
        "cashier_unknown": sale(school, 6, wallet=1, cashier_id="csh_nope"),
        "void_target_unknown": void_of(sale(school, 99, wallet=1), 7),
        "void_mismatch": void_of(good, 8, total=good["total"] + 1, lines=[
            dict(good["lines"][0], unit_price=good["lines"][0]["unit_price"] + 1)]),
        "seq_reused": sale(school, 1, wallet=1),  # seq 1 belongs to `good`
    }
    result = await push(client, token, [good, *cases.values()])
    statuses = [(r["status"], r["code"]) for r in result["results"]]
    assert statuses[0] == ("applied", None)
    assert statuses[1:] == [("rejected", code) for code in cases]
    assert result["acked_seq"] == 8
    # A void twice: the first applies, the second is refused, money moves back once.
    v1, v2 = void_of(good, 9), void_of(good, 10)
    twice = await push(client, token, [v1, v2])
    assert [(r["status"], r["code"]) for r in twice["results"]] == [
        ("applied", None), ("rejected", "void_twice")]
    assert await _balance(db_url, school["wallets"][1]["wallet_id"]) == school["wallets"][1][
        "balance"]
    await _audit_ok(db_url)


async def test_void_in_a_later_batch_and_from_another_device(
        client: Any, device: dict[str, Any], school: dict[str, Any], db_url: str) -> None:
    from .conftest_helpers import new_code

    original = sale(school, 1, wallet=2)
    await push(client, device["device_token"], [original])
    other = await enroll(client, await new_code(db_url, school["school_id"]), "Counter 2")
    result = await push(client, other["device_token"], [void_of(original, 1, cashier_id=school[
        "cashiers"][1]["cashier_id"])])
    assert result["results"][0]["status"] == "applied"
    assert result["results"][0]["balance_after"] == school["wallets"][2]["balance"]
    await _audit_ok(db_url)


async def test_each_flag_applies_the_sale_and_marks_it(
        client: Any, device: dict[str, Any], school: dict[str, Any], db_url: str) -> None:
    token = device["device_token"]
    rich = school["wallets"][1]
    limited = school["wallets"][0]  # demo: daily_limit 1500 on every third wallet
    assert limited["daily_limit"] == 1500 and rich["daily_limit"] is None
    frozen_index = next(i for i, w in enumerate(school["wallets"]) if w["status"] == "frozen")
    meal = school["products"][5]  # 1500
    units = rich["balance"] // meal["price"] + 1
    cases = [
        ("overdraft", sale(school, 1, wallet=1, items=(5,), qty=units)),
        ("credential_blocked", sale(school, 2, wallet=0, items=(0,),
                                    uid=school["blocked_credential_uid"],
                                    created_at=datetime.now(UTC))),
        ("credential_mismatch", sale(school, 3, wallet=2, uid=school["wallets"][3][
            "credential_uid"])),
        ("credential_mismatch", sale(school, 4, wallet=2, uid="04FFFFFFFFFFFF")),
        ("wallet_frozen", sale(school, 5, wallet=frozen_index)),
        ("price_mismatch", sale(school, 6, wallet=4, lines=[
            {"product_id": meal["product_id"], "name": meal["name"], "quantity": 1,
             "unit_price": meal["price"] - 100}], total=meal["price"] - 100)),
        ("clock_skew", sale(school, 7, wallet=4,
                            created_at=datetime.now(UTC) + timedelta(minutes=10))),
    ]
    result = await push(client, token, [body for _, body in cases])
    for (flag, _), res in zip(cases, result["results"], strict=True):
        assert res["status"] == "applied", flag
        assert flag in res["flags"], (flag, res)
    assert result["results"][0]["balance_after"] == rich["balance"] - units * meal["price"]
    assert result["results"][0]["balance_after"] < 0
    # Only the flags each case earns.
    assert result["results"][4]["flags"] == ["wallet_frozen"]
    # A sale made before the bracelet was blocked (offline, synced late) is not flagged.
    early = sale(school, 8, wallet=0, items=(0,), uid=school["blocked_credential_uid"],
                 created_at=datetime.now(UTC) - timedelta(days=2))
    assert (await push(client, token, [early]))["results"][0]["flags"] == []
    await _audit_ok(db_url)


async def test_daily_limit_counts_the_school_day_and_accepts_the_boundary(
        client: Any, device: dict[str, Any], school: dict[str, Any]) -> None:
    token = device["device_token"]  # wallet 0: limit 1500; product 5 costs 1500
    # Two days ago (inside the school's offline window, so the till's day is believed).
    riyadh_noon = (datetime.now(UTC) - timedelta(days=2)).replace(
        hour=9, minute=0, second=0, microsecond=0)  # 12:00 in Asia/Riyadh
    exact = sale(school, 1, wallet=0, items=(5,), created_at=riyadh_noon)
    over = sale(school, 2, wallet=0, items=(0,), created_at=riyadh_noon + timedelta(hours=1))
    # 21:30 UTC is 00:30 next day in Riyadh: a new school day, not over the limit.
    next_day = sale(school, 3, wallet=0, items=(0,),
                    created_at=riyadh_noon + timedelta(hours=12, minutes=30))
    result = await push(client, token, [exact, over, next_day])
    assert [r["flags"] for r in result["results"]] == [[], ["daily_limit_exceeded"], []]
    # Voiding the first sale frees the day's allowance again.
    await push(client, token, [void_of(exact, 4)])
    again = await push(client, token, [sale(school, 5, wallet=0, items=(0,),
                                            created_at=riyadh_noon + timedelta(hours=2))])
    assert again["results"][0]["flags"] == []


async def test_gaps_show_in_missing_seqs_and_hold_acked_seq(
        client: Any, device: dict[str, Any], school: dict[str, Any]) -> None:
    token = device["device_token"]
    result = await push(client, token, [sale(school, s, wallet=1) for s in (1, 2, 4, 7)])
    assert result["acked_seq"] == 2
    assert result["missing_seqs"] == [3, 5, 6]
    status_only = await push(client, token, [])
    assert (status_only["acked_seq"], status_only["missing_seqs"]) == (2, [3, 5, 6])
    filled = await push(client, token, [sale(school, 3, wallet=1), sale(school, 5, wallet=1),
                                        sale(school, 6, wallet=1)])
    assert (filled["acked_seq"], filled["missing_seqs"]) == (7, [])


async def test_missing_seqs_lists_at_most_100_even_for_a_huge_jump(
        client: Any, device: dict[str, Any], school: dict[str, Any]) -> None:
    result = await push(client, device["device_token"], [sale(school, 10**12, wallet=1)])
    assert result["acked_seq"] == 0
    assert result["missing_seqs"] == list(range(1, 101))


async def test_batch_with_repeated_ref_applies_it_once(
        client: Any, device: dict[str, Any], school: dict[str, Any], db_url: str) -> None:
    body = sale(school, 1, wallet=1)
    result = await push(client, device["device_token"], [body, body])
    assert [r["status"] for r in result["results"]] == ["applied", "duplicate"]
    engine = create_engine(db_url)
    async with engine.connect() as conn:
        n = (await conn.execute(sa.select(sa.func.count()).select_from(postings)
                                .where(sa.or_(postings.c.to_account == body["wallet_id"],
                                              postings.c.from_account == body["wallet_id"])))
                     ).scalar_one()
        stored = (await conn.execute(sa.select(sa.func.count()).select_from(sales))).scalar_one()
    await engine.dispose()
    assert n == 2  # the demo top-up and this sale
    assert stored == 1


async def test_next_snapshot_delta_carries_new_balances(
        client: Any, device: dict[str, Any], school: dict[str, Any]) -> None:
    token = device["device_token"]
    full = await snapshot(client, token)
    body = sale(school, 1, wallet=1)
    await push(client, token, [body])
    delta = await snapshot(client, token, full["cursor"])
    assert delta["full"] is False
    assert [w["wallet_id"] for w in delta["wallets"]] == [body["wallet_id"]]
    assert delta["wallets"][0]["balance"] == school["wallets"][1]["balance"] - body["total"]


async def test_ref_uniqueness_is_per_school(client: Any, device: dict[str, Any],
                                            demo: dict[str, Any], db_url: str) -> None:
    """Refs are UUIDs, but a collision across schools must not leak one school's outcome."""
    from .conftest_helpers import new_code

    other_school = demo["schools"][1]
    other = await enroll(client, await new_code(db_url, other_school["school_id"]))
    ref = new_ref()
    a = await push(client, device["device_token"], [sale(demo["schools"][0], 1, ref=ref)])
    b = await push(client, other["device_token"], [sale(other_school, 1, ref=ref)])
    assert a["results"][0]["status"] == b["results"][0]["status"] == "applied"
