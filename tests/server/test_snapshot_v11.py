"""Snapshot v1.1 fields: each wallet's ``spent_today`` (what the ledger counts against its
daily limit on the school's current day), ``grade``, ``homeroom``, ``restrictions``; each
product's ``allergens`` and ``position``. One grouped spend query per page, not per wallet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event

from shared.protocol import ProductRow, SnapshotResponse, WalletRow
from sync_server import snapshot as snapshot_mod
from sync_server.storage.engine import create_engine

from .helpers import enroll, push, sale, snapshot, void_of

RIYADH = ZoneInfo("Asia/Riyadh")


def day(moment: datetime | str) -> str:
    when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return when.astimezone(RIYADH).date().isoformat()


async def test_wallets_carry_spent_today_and_deltas_refresh_it(
        client: Any, demo: dict[str, Any]) -> None:
    school = demo["schools"][0]
    token = (await enroll(client, school["enrollment_code"]))["device_token"]
    full = await snapshot(client, token)
    SnapshotResponse.model_validate(full)  # what the server sends always parses
    limited, free = school["wallets"][0], school["wallets"][1]
    assert limited["daily_limit"] is not None and free["daily_limit"] is None
    seeded = {w["wallet_id"]: w for w in school["wallets"]}
    for w in full["wallets"]:
        assert w["spent_today"] == 0
        made = seeded[w["wallet_id"]]
        assert (w["grade"], w["homeroom"]) == (made["grade"], made["homeroom"])
        assert w["restrictions"] == {
            "blocked_categories": sorted(made["restrictions"]["categories"]),
            "blocked_products": sorted(made["restrictions"]["products"]),
            "allergens": sorted(made["restrictions"]["allergens"])}
    assert sum(bool(any(w["restrictions"].values())) for w in full["wallets"]) == 2
    by_id = {w["wallet_id"]: w for w in full["wallets"]}
    assert by_id[limited["wallet_id"]]["grade"] == "Grade 1"  # the demo's grade column
    allergens = {p["product_id"]: sorted(p["allergens"]) for p in school["products"]}
    assert all(p["allergens"] == allergens[p["product_id"]] for p in full["products"])
    # Every product has a till position, 1..n in the order the demo created them.
    assert sorted(p["position"] for p in full["products"]) == list(
        range(1, len(full["products"]) + 1))

    now = datetime.now(UTC) - timedelta(seconds=5)
    today_sale = sale(school, 1, wallet=0, items=(3,), created_at=now)          # 1200
    yesterday = sale(school, 2, wallet=0, items=(0,), created_at=now - timedelta(days=1))
    other = sale(school, 3, wallet=1, items=(0,), created_at=now)               # no limit
    answer = await push(client, token, [today_sale, yesterday, other])
    assert [r["status"] for r in answer["results"]] == ["applied"] * 3

    delta = await snapshot(client, token, full["cursor"])
    rows = {w["wallet_id"]: w for w in delta["wallets"]}
    assert set(rows) == {limited["wallet_id"], free["wallet_id"]}  # the sales bumped both
    expected = 1200 if day(now) == day(delta["server_time"]) else 0  # midnight between
    assert rows[limited["wallet_id"]]["spent_today"] == expected
    assert rows[limited["wallet_id"]]["balance_as_of"] == delta["server_time"]
    assert rows[free["wallet_id"]]["spent_today"] == 0  # no daily limit: not summed

    # A void takes the sale out of the day's spend, in the next delta.
    answer = await push(client, token, [void_of(today_sale, 4)])
    assert answer["results"][0]["status"] == "applied"
    again = await snapshot(client, token, delta["cursor"])
    assert [(w["wallet_id"], w["spent_today"]) for w in again["wallets"]] == [
        (limited["wallet_id"], 0)]


def test_a_v1_0_server_without_the_new_fields_still_parses() -> None:
    row = WalletRow.model_validate({
        "wallet_id": "w1", "display_name": "Sara A.", "balance": 100, "daily_limit": 1500,
        "status": "active", "balance_as_of": "2026-11-22T10:15:03.120+03:00"})
    assert row.spent_today is None  # "not said", which the terminal must not read as 0
    assert row.grade is None and row.homeroom is None
    assert row.restrictions.blocked_categories == row.restrictions.allergens == []
    product = ProductRow.model_validate({"product_id": "p", "name": "Water", "price": 150,
                                         "category": "Drinks", "active": True,
                                         "some_v1_2_field": 1})
    assert product.allergens == [] and product.position is None


async def test_one_grouped_spend_query_per_page(db_url: str, demo: dict[str, Any]) -> None:
    school = demo["schools"][0]
    engine = create_engine(db_url)
    spend_queries: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "sum(sales.total)" in statement.lower():
            spend_queries.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        cursor, pages, limited_pages = None, 0, 0
        while True:
            page = await snapshot_mod.build(engine, school["school_id"], cursor, page_rows=7)
            pages += 1
            limited_pages += any(w["daily_limit"] is not None for w in page["wallets"])
            cursor = page["cursor"]
            if not page["more"]:
                break
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
        await engine.dispose()
    # One per page that holds a wallet with a daily limit (a page without any asks nothing).
    assert pages > 5 and limited_pages > 0 and len(spend_queries) == limited_pages
