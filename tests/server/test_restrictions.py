"""Wallet restrictions (spec v1.1) on SQLite and PostgreSQL: set and lift keep their history,
the snapshot sends what is in force (one grouped query per page), and the push judge flags
``restricted_item`` only on a sale made after the restriction was set. Product positions: a
new product never moves another, a reorder renumbers only what moved and reaches tills."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from shared.protocol import SalesPush, SnapshotResponse
from sync_server import positions, records, restrictions
from sync_server import snapshot as snapshot_mod
from sync_server.ledger.sales import apply_push
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import products, sales, wallet_restrictions
from tests.admin.conftest import as_role

from .helpers import enroll, push, sale, snapshot, void_of


async def _set(db_url: str, school_id: str, wallet_id: str, *,
               categories: Iterable[str] = (), products_: Iterable[str] = (),
               allergens: Iterable[str] = (), at: datetime | None = None,
               ) -> restrictions.Change:
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            return await restrictions.set_for_wallet(
                conn, school_id, wallet_id,
                restrictions.Wanted(frozenset(categories), frozenset(products_),
                                    frozenset(allergens)),
                actor="usr_test", at=at)
    finally:
        await engine.dispose()


def text_of(page: str) -> str:
    """The page's text as a reader sees it (tags such as ``<bdi>`` dropped)."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


async def _rows(db_url: str, stmt: Any) -> list[Any]:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(stmt)).all())
    finally:
        await engine.dispose()


async def _allergens(db_url: str, school_id: str, product_id: str, names: list[str]) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await records.update_product(conn, school_id, product_id, allergens=names)
    finally:
        await engine.dispose()


async def test_set_and_lift_keep_history_and_reach_the_snapshot(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    sid, wallet = school["school_id"], school["wallets"][1]["wallet_id"]
    water = school["products"][0]["product_id"]
    token = (await enroll(client, school["enrollment_code"]))["device_token"]
    first = await snapshot(client, token)

    change = await _set(db_url, sid, wallet, categories={"Snacks"}, products_={water},
                        allergens={"peanut", "sesame"})
    assert set(change.added) == {("category", "Snacks"), ("product", water),
                                 ("allergen", "peanut"), ("allergen", "sesame")}
    assert change.lifted == ()
    delta = await snapshot(client, token, first["cursor"])
    SnapshotResponse.model_validate(delta)
    assert [w["wallet_id"] for w in delta["wallets"]] == [wallet]  # only this wallet moved
    assert delta["wallets"][0]["restrictions"] == {
        "blocked_categories": ["Snacks"], "blocked_products": [water],
        "allergens": ["peanut", "sesame"]}

    # Lifting the product and one allergen closes those rows and opens nothing new.
    change = await _set(db_url, sid, wallet, categories={"Snacks"}, allergens={"peanut"})
    assert change.added == () and set(change.lifted) == {("product", water),
                                                        ("allergen", "sesame")}
    again = await snapshot(client, token, delta["cursor"])
    assert again["wallets"][0]["restrictions"] == {
        "blocked_categories": ["Snacks"], "blocked_products": [], "allergens": ["peanut"]}

    # The same set again changes nothing: no row, no version bump, empty delta.
    assert not await _set(db_url, sid, wallet, categories={"Snacks"}, allergens={"peanut"})
    assert (await snapshot(client, token, again["cursor"]))["wallets"] == []

    rows = await _rows(db_url, sa.select(wallet_restrictions).where(
        wallet_restrictions.c.wallet_id == wallet).order_by(wallet_restrictions.c.restriction_id))
    assert len(rows) == 4  # nothing deleted or edited except the lifted rows' ``until``
    closed = {(r.kind, r.value) for r in rows if r.until is not None}
    assert closed == {("product", water), ("allergen", "sesame")}
    assert all(r.set_by == "usr_test" and r.school_id == sid for r in rows)
    assert all(r.until is None or r.until >= r.since for r in rows)

    # A full snapshot: every wallet has all three lists, never null.
    full = await snapshot(client, token)
    for w in full["wallets"]:
        assert set(w["restrictions"]) == {"blocked_categories", "blocked_products", "allergens"}
    by_id = {w["wallet_id"]: w for w in full["wallets"]}
    assert by_id[wallet]["restrictions"]["allergens"] == ["peanut"]


async def test_bad_restrictions_are_refused_and_change_nothing(
        demo: dict[str, Any], db_url: str) -> None:
    school, other = demo["schools"]
    sid, wallet = school["school_id"], school["wallets"][2]["wallet_id"]
    foreign_product = other["products"][0]["product_id"]
    before = await _rows(db_url, sa.select(wallet_restrictions))  # the demo's two
    cases: list[tuple[dict[str, Any], str]] = [
        ({"products_": {foreign_product}}, "no product"),
        ({"products_": {"prd_missing"}}, "no product"),
        ({"allergens": {"Peanut "}}, "lower-case"),
        ({"allergens": {"pea\x00nut"}}, "NUL"),
        ({"categories": {"x" * 101}}, "longer than"),
        ({"categories": {"Snacks\u202e"}}, "invisible"),
        ({"allergens": {f"a{i}" for i in range(101)}}, "more than 100"),
    ]
    for kwargs, words in cases:
        with pytest.raises(restrictions.RestrictionError, match=words):
            await _set(db_url, sid, wallet, **kwargs)
    with pytest.raises(restrictions.RestrictionError, match="no such wallet"):
        await _set(db_url, sid, other["wallets"][0]["wallet_id"], allergens={"milk"})
    assert await _rows(db_url, sa.select(wallet_restrictions)) == before


def test_allergen_text_is_cleaned() -> None:
    assert restrictions.parse_allergens(" Peanut, TREE   nuts;sesame,,peanut ") == [
        "peanut", "sesame", "tree nuts"]
    assert restrictions.parse_allergens("") == []
    assert restrictions.parse_allergens("فول سوداني، حليب؛ سمسم") == [
        "حليب", "سمسم", "فول سوداني"]  # Arabic comma and semicolon
    with pytest.raises(restrictions.RestrictionError):
        restrictions.parse_allergens("ok, bad\x07bell")


async def test_sale_on_an_old_snapshot_is_applied_and_flagged_restricted_item(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    """The till sold from a snapshot taken before the restriction: the food was handed over,
    so the sale is applied, flagged for review, and the queue says which item and why."""
    school = demo["schools"][0]
    sid = school["school_id"]
    token = (await enroll(client, school["enrollment_code"]))["device_token"]
    await snapshot(client, token)  # the till's snapshot: no restriction yet
    yoghurt, granola = school["products"][9], school["products"][7]   # both Snacks
    await _allergens(db_url, sid, granola["product_id"], ["peanut", "oats"])
    set_at = datetime.now(UTC) - timedelta(minutes=10)
    await _set(db_url, sid, school["wallets"][1]["wallet_id"], allergens={"peanut"}, at=set_at)
    await _set(db_url, sid, school["wallets"][2]["wallet_id"], categories={"Snacks"}, at=set_at)
    await _set(db_url, sid, school["wallets"][3]["wallet_id"],
               products_={school["products"][0]["product_id"]}, at=set_at)

    after = set_at + timedelta(minutes=5)
    before = set_at - timedelta(minutes=5)
    batch = [
        sale(school, 1, wallet=1, items=(7,), created_at=after),       # allergen: flagged
        sale(school, 2, wallet=1, items=(9,), created_at=after),       # no peanut: clean
        sale(school, 3, wallet=1, items=(7,), created_at=before),      # before it was set
        sale(school, 4, wallet=2, items=(0, 9), created_at=after),     # category: flagged
        sale(school, 5, wallet=3, items=(0,), created_at=after),       # product: flagged
        sale(school, 6, wallet=4, items=(7,), created_at=after),       # no restriction
    ]
    answer = await push(client, token, batch)
    flagged = ["restricted_item" in r["flags"] for r in answer["results"]]
    assert [r["status"] for r in answer["results"]] == ["applied"] * 6
    assert flagged == [True, False, False, True, True, False]
    assert all(r["detail"] is None for r in answer["results"])  # applied: no detail (spec)
    replay = await push(client, token, batch[:1])
    assert replay["results"][0]["status"] == "duplicate"
    assert "restricted_item" in replay["results"][0]["flags"]
    # A void of a flagged sale is not itself flagged (it gives the money back).
    voided = await push(client, token, [void_of(batch[0], 7)])
    assert voided["results"][0]["status"] == "applied"
    assert "restricted_item" not in voided["results"][0]["flags"]

    stored = {r.ref: r for r in await _rows(db_url, sa.select(
        sales.c.ref, sales.c.flags, sales.c.needs_review).where(sales.c.school_id == sid))}
    assert stored[batch[0]["ref"]].needs_review and stored[batch[3]["ref"]].needs_review
    assert not stored[batch[1]["ref"]].needs_review

    # Lifting it later does not unflag, and a sale made after the lift is not flagged.
    lifted_at = datetime.now(UTC) - timedelta(minutes=2)
    await _set(db_url, sid, school["wallets"][1]["wallet_id"], at=lifted_at)
    late = sale(school, 8, wallet=1, items=(7,), created_at=lifted_at + timedelta(seconds=30))
    between = sale(school, 9, wallet=1, items=(7,), created_at=lifted_at - timedelta(seconds=30))
    answer = await push(client, token, [late, between])
    assert ["restricted_item" in r["flags"] for r in answer["results"]] == [False, True]

    admin = await as_role(client, demo, "admin")
    page = await admin.page("/admin/exceptions")
    for s in (batch[0], batch[3], batch[4]):
        assert s["ref"] in page
    assert batch[1]["ref"] not in page and batch[2]["ref"] not in page
    queue = text_of(page)
    assert f"{granola['name']}: contains an allergen of the student: peanut" in queue
    assert f"{yoghurt['name']}: category blocked for the student: Snacks" in queue
    assert f"{school['products'][0]['name']}: this product is blocked for the student" in queue
    assert "restricted_item" in await admin.page("/admin/sales?flag=restricted_item")
    detail = text_of(await admin.page(f"/admin/sales/{batch[0]['ref']}"))
    assert f"{granola['name']}: contains an allergen of the student: peanut" in detail


async def test_restrictions_are_read_once_per_push_and_once_per_snapshot_page(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    sid = school["school_id"]
    device_id = (await enroll(client, school["enrollment_code"]))["device_id"]
    await _allergens(db_url, sid, school["products"][7]["product_id"], ["peanut"])
    for i in range(1, 6):
        await _set(db_url, sid, school["wallets"][i]["wallet_id"], allergens={"peanut"},
                   at=datetime.now(UTC) - timedelta(hours=1))
    engine = create_engine(db_url)
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "from wallet_restrictions" in statement.lower():
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        cursor, pages = None, 0
        while True:
            page = await snapshot_mod.build(engine, sid, cursor, page_rows=20)
            pages += 1 if page["wallets"] else 0
            cursor = page["cursor"]
            if not page["more"]:
                break
        assert pages >= 3 and len(seen) == pages  # one grouped read per page with wallets
        by_page = page["wallets"]
        assert all("restrictions" in w for w in by_page)


        seen.clear()
        batch = SalesPush.model_validate_json(json.dumps({"sales": [
            sale(school, n, wallet=n % 10, items=(7, 0)) for n in range(1, 201)]})).sales
        outcome = await apply_push(engine, sid, device_id, batch)
        assert len(seen) == 1  # one query for the batch's wallets, not one per sale or line
        flagged = [n for n, r in enumerate(outcome.results, start=1)
                   if "restricted_item" in r["flags"]]
        assert flagged == [n for n in range(1, 201) if 1 <= n % 10 <= 5]
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
        await engine.dispose()


async def test_a_new_product_goes_last_and_reorder_reaches_tills(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    sid = school["school_id"]
    token = (await enroll(client, school["enrollment_code"]))["device_token"]
    first = await snapshot(client, token)
    before = {p["product_id"]: p["position"] for p in first["products"]}
    assert sorted(before.values()) == list(range(1, 11))

    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            new = await records.create_product(conn, sid, "كعك بالتمر", 450, "Snacks",
                                               allergens=["Wheat", " milk "])
        delta = await snapshot(client, token, first["cursor"])
        # Only the new product arrives: nobody else was renumbered.
        assert [(p["product_id"], p["position"], p["allergens"]) for p in delta["products"]] \
            == [(new, 11, ["milk", "wheat"])]

        third = school["products"][2]["product_id"]
        async with engine.begin() as conn:
            moved = await positions.move(conn, sid, new, to=3)
        assert {pid for pid, _, _ in moved} == {new, *[p for p, n in before.items()
                                                        if 3 <= n <= 10]}
        async with engine.begin() as conn:
            step = await positions.move(conn, sid, third, step=-1)
        assert len(step) == 2  # a swap with its neighbour
        async with engine.begin() as conn:
            assert await positions.move(conn, sid, school["products"][0]["product_id"],
                                        step=-1) == []  # already first: nothing moves
            with pytest.raises(positions.PositionError):
                await positions.move(conn, sid, new, to=0)
            with pytest.raises(positions.PositionError):
                await positions.move(conn, sid, demo["schools"][1]["products"][0]["product_id"],
                                     to=1)
    finally:
        await engine.dispose()

    after = await snapshot(client, token, delta["cursor"])
    got = {p["product_id"]: p["position"] for p in after["products"]}
    assert got[third] == 3 and got[new] == 4  # pushed to 4 by new, then moved up past it
    full = await snapshot(client, token)
    order = [p["product_id"] for p in sorted(full["products"], key=lambda p: p["position"])]
    assert order[:4] == [school["products"][0]["product_id"],
                         school["products"][1]["product_id"], third, new]
    assert sorted(p["position"] for p in full["products"]) == list(range(1, 12))
    rows = await _rows(db_url, sa.select(products.c.position).where(
        products.c.school_id == demo["schools"][1]["school_id"]))
    assert sorted(r.position for r in rows) == list(range(1, 11))  # other school untouched


async def test_two_admins_reordering_at_once_take_turns(
        demo: dict[str, Any], db_url: str, db_factory: Any) -> None:
    """Each move reads the order under the school row's lock: the second waits for the first
    and moves from its result, so positions stay 1..n with no number shared."""
    if db_factory.kind != "postgresql":
        pytest.skip("SQLite has one writer at a time; the race needs PostgreSQL's row locks")
    import asyncio

    school = demo["schools"][0]
    sid = school["school_id"]
    first, last = school["products"][0]["product_id"], school["products"][9]["product_id"]
    engine = create_engine(db_url)
    try:
        conn_a = await engine.connect()
        conn_b = await engine.connect()
        tx_a = await conn_a.begin()
        await positions.move(conn_a, sid, last, to=1)          # holds the school row
        tx_b = await conn_b.begin()
        second = asyncio.ensure_future(positions.move(conn_b, sid, first, step=1))
        await asyncio.sleep(0.5)
        assert not second.done()  # waiting for the first admin's lock
        await tx_a.commit()
        moved = await asyncio.wait_for(second, timeout=10)
        await tx_b.commit()
        await conn_a.close()
        await conn_b.close()
    finally:
        await engine.dispose()
    # The second admin moved ``first`` down from place 2 (after the first move), to 3.
    assert (first, 2, 3) in moved
    rows = await _rows(db_url, sa.select(products.c.product_id, products.c.position)
                       .where(products.c.school_id == sid).order_by(products.c.position))
    assert [r.position for r in rows] == list(range(1, 11))
    assert [r.product_id for r in rows][:3] == [last, school["products"][1]["product_id"],
                                                first]
