"""Snapshots: full, delta by cursor, paging below one high-water mark, tenant isolation."""

from __future__ import annotations

from typing import Any

from sync_server import records
from sync_server import snapshot as snapshot_mod
from sync_server.storage.engine import create_engine

from .helpers import enroll, snapshot


async def test_full_snapshot_has_everything_for_this_school_only(
        client: Any, demo: dict[str, Any]) -> None:
    school, other = demo["schools"]
    device = await enroll(client, school["enrollment_code"])
    full = await snapshot(client, device["device_token"])
    assert full["full"] is True and full["more"] is False
    assert {w["wallet_id"] for w in full["wallets"]} == {w["wallet_id"] for w in school["wallets"]}
    sent = {w["wallet_id"] for w in full["wallets"]}
    assert not {w["wallet_id"] for w in other["wallets"]} & sent
    by_id = {w["wallet_id"]: w for w in full["wallets"]}
    for w in school["wallets"]:
        assert by_id[w["wallet_id"]]["balance"] == w["balance"]
        assert by_id[w["wallet_id"]]["status"] == w["status"]
    blocked = [c for c in full["credentials"] if c["status"] == "blocked"]
    assert [c["uid"] for c in blocked] == [school["blocked_credential_uid"]]
    assert all(c["uid"] == c["uid"].upper() for c in full["credentials"])
    assert len(full["products"]) == 10 and len(full["cashiers"]) == 2
    assert all(c["pin_hash"].startswith("$argon2") for c in full["cashiers"])
    assert full["settings"]["currency"] == "SAR"
    assert full["settings"]["timezone"] == "Asia/Riyadh"
    assert isinstance(full["settings"]["offline_max_sale"], int)


async def test_delta_carries_changes_with_their_new_status(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    token = (await enroll(client, school["enrollment_code"]))["device_token"]
    full = await snapshot(client, token)
    empty = await snapshot(client, token, full["cursor"])
    assert empty["full"] is False
    assert empty["wallets"] == empty["credentials"] == empty["products"] == [] == empty["cashiers"]

    engine = create_engine(db_url)
    async with engine.begin() as conn:
        await records.update_product(conn, school["school_id"],
                                     school["products"][0]["product_id"], active=False)
        await records.block_credential(conn, school["school_id"],
                                       school["wallets"][2]["credential_uid"])
        await records.update_wallet(conn, school["school_id"], school["wallets"][3]["wallet_id"],
                                    status="frozen")
        await records.update_cashier(conn, school["school_id"],
                                     school["cashiers"][1]["cashier_id"], active=False)
        await records.update_settings(conn, school["school_id"], offline_max_sale=1234)
    await engine.dispose()
    delta = await snapshot(client, token, empty["cursor"])
    assert delta["full"] is False
    assert [(p["product_id"], p["active"]) for p in delta["products"]] == [
        (school["products"][0]["product_id"], False)]
    assert [(c["uid"], c["status"]) for c in delta["credentials"]] == [
        (school["wallets"][2]["credential_uid"], "blocked")]
    assert [(w["wallet_id"], w["status"]) for w in delta["wallets"]] == [
        (school["wallets"][3]["wallet_id"], "frozen")]
    assert [c["active"] for c in delta["cashiers"]] == [False]
    assert delta["settings"]["offline_max_sale"] == 1234
    again = await snapshot(client, token, delta["cursor"])
    assert again["products"] == again["wallets"] == []


async def test_unknown_or_foreign_cursor_gives_a_full_snapshot(
        client: Any, demo: dict[str, Any]) -> None:
    token = (await enroll(client, demo["schools"][0]["enrollment_code"]))["device_token"]
    for cursor in ("garbage", "eyJlIjoieCIsInMiOjV9", "A" * 300):
        body = await snapshot(client, token, cursor)
        assert body["full"] is True
        assert len(body["wallets"]) == len(demo["schools"][0]["wallets"])


async def test_paging_returns_every_row_once_and_only_the_last_cursor_is_a_delta(
        db_url: str, demo: dict[str, Any]) -> None:
    school = demo["schools"][0]
    engine = create_engine(db_url)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await snapshot_mod.build(engine, school["school_id"], cursor, page_rows=7)
        pages += 1
        assert page["full"] is True
        seen.extend(w["wallet_id"] for w in page["wallets"])
        cursor = page["cursor"]
        if pages == 2:  # a change while paging arrives with the next delta, never lost
            async with engine.begin() as conn:
                await records.update_wallet(conn, school["school_id"],
                                            school["wallets"][0]["wallet_id"],
                                            display_name="Renamed while paging")
        if not page["more"]:
            break
    assert pages == len(school["wallets"]) // 7 + 1
    assert sorted(seen) == sorted(w["wallet_id"] for w in school["wallets"])
    delta = await snapshot_mod.build(engine, school["school_id"], cursor, page_rows=7)
    await engine.dispose()
    assert delta["full"] is False
    assert [w["display_name"] for w in delta["wallets"]] == ["Renamed while paging"]
