"""A till of every released schema version upgrades in place and loses nothing.

Each file in ``tests/fixtures/terminal_db/`` is a terminal database as a past release left it
(``tests/fixtures/make_terminal_dbs.py`` says how each was made): enrolled, a snapshot, two
sales the server acknowledged and three still queued. Opened by today's code, every queued sale
is kept byte for byte, the next sale takes the next seq, and the queue drains into a real
in-process server, each sale applied exactly once.

The server side is built to match the file (the school, wallets, bracelets, products, cashier
and the device with its token, under the IDs the file holds) and is given the two sales the
old release had already synced, as that release did. Only the server address in the copy is
changed: the file was made for a server that no longer exists.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from sync_server.ledger import money_ops
from sync_server.ledger.accounts import SYSTEM_KINDS, system_account
from sync_server.ledger.audit import audit
from sync_server.records import DEFAULT_SETTINGS, assign_credential
from sync_server.secrets import token_hash
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import (
    accounts,
    cashiers,
    devices,
    product_prices,
    products,
    sales,
    schools,
    wallets,
)
from terminal.core import Terminal
from terminal.store.db import DB_FILENAME
from terminal.store.schema import migrations
from tests.conftest import DatabaseFactory, LiveServer
from tests.fixtures.make_terminal_dbs import HERE, step_names

# The columns every release's outbox has (m001): what "kept byte for byte" compares.
OUTBOX_V1 = ("seq, ref, kind, voids, created_at, school_day, cashier_id, wallet_id,"
             " credential_uid, lines_json, total, offline, last_status, outcome, flags_json,"
             " code, detail, balance_after, result_at, applied_epoch, acked")
# Opening balances the fixture's snapshot was derived from (5000 - 300, 3000 - 1350).
OPENING = {"wal_fixture_sara": 5000, "wal_fixture_omar": 3000}


def test_every_terminal_schema_version_has_a_fixture() -> None:
    """A new terminal migration needs its file: run ``python -m
    tests.fixtures.make_terminal_dbs`` and commit what it makes (docs/upgrading.md)."""
    missing = [step for step in step_names() if not (HERE / f"{step}.db").exists()]
    assert not missing, (f"no fixture database for terminal schema {missing}: run "
                         "`.venv/bin/python -m tests.fixtures.make_terminal_dbs` and commit it")


def _read(path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def _wire(row: sqlite3.Row) -> dict[str, Any]:
    """A push body's sale from the raw columns, as every release has built it."""
    return {"ref": row["ref"], "seq": row["seq"], "kind": row["kind"], "voids": row["voids"],
            "created_at": row["created_at"], "cashier_id": row["cashier_id"],
            "wallet_id": row["wallet_id"], "credential_uid": row["credential_uid"],
            "lines": json.loads(row["lines_json"]), "total": row["total"],
            "offline": bool(row["offline"])}


def _fixture_contents(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return {
            "device": dict(conn.execute("SELECT * FROM device").fetchone()),
            "wallets": [dict(r) for r in conn.execute("SELECT * FROM wallets")],
            "credentials": [dict(r) for r in conn.execute("SELECT * FROM credentials")],
            "products": [dict(r) for r in conn.execute("SELECT * FROM products")],
            "cashiers": [dict(r) for r in conn.execute("SELECT * FROM cashiers")],
            "sales": [_wire(r) for r in conn.execute("SELECT * FROM outbox ORDER BY seq")],
            "acked_seq": conn.execute("SELECT acked_seq FROM sync_state").fetchone()[0],
        }
    finally:
        conn.close()


async def _server_world(db_url: str, held: dict[str, Any]) -> None:
    """The school this till belongs to, under the IDs the file holds (what the server of
    that time had created; rows written as ``sync_server.records`` writes them)."""
    school_id, now = held["device"]["school_id"], datetime.now(UTC)
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(schools).values(
                school_id=school_id, name="Fixture School", currency="SAR",
                timezone="Asia/Riyadh", **DEFAULT_SETTINGS, version=1, settings_version=1,
                snapshot_epoch="fixture", created_at=now))
            await conn.execute(sa.insert(accounts), [
                {"account_id": system_account(school_id, kind), "school_id": school_id,
                 "kind": kind, "created_at": now} for kind in SYSTEM_KINDS])
            for w in held["wallets"]:
                await conn.execute(sa.insert(accounts).values(
                    account_id=w["wallet_id"], school_id=school_id, kind="wallet",
                    created_at=now))
                await conn.execute(sa.insert(wallets).values(
                    wallet_id=w["wallet_id"], school_id=school_id,
                    display_name=w["display_name"], balance=0, daily_limit=w["daily_limit"],
                    status=w["status"], version=1, created_at=now, updated_at=now))
                await money_ops.apply_in(conn, money_ops.MoneyOp(
                    school_id=school_id, kind="opening", wallet_id=w["wallet_id"],
                    amount=OPENING[w["wallet_id"]], idem_key=f"opening:{w['wallet_id']}",
                    actor="fixture", reason="opening balance"))
            for c in held["credentials"]:
                await assign_credential(conn, school_id, c["wallet_id"], c["uid"])
            for p in held["products"]:
                await conn.execute(sa.insert(products).values(
                    product_id=p["product_id"], school_id=school_id, name=p["name"],
                    price=p["price"], category=p["category"], active=bool(p["active"]),
                    version=1, created_at=now))
                await conn.execute(sa.insert(product_prices).values(
                    product_id=p["product_id"], school_id=school_id, price=p["price"],
                    valid_from=datetime(2000, 1, 1, tzinfo=UTC)))
            for c in held["cashiers"]:
                await conn.execute(sa.insert(cashiers).values(
                    cashier_id=c["cashier_id"], school_id=school_id, name=c["name"],
                    pin_hash=c["pin_hash"], active=bool(c["active"]), version=1,
                    created_at=now))
            device = held["device"]
            await conn.execute(sa.insert(devices).values(
                device_id=device["device_id"], school_id=school_id, name=device["name"],
                token_hash=token_hash(device["device_token"]), status="active",
                enrolled_at=now))
    finally:
        await engine.dispose()


async def _server_sales(db_url: str, device_id: str) -> tuple[list[tuple[Any, ...]], Any]:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(
                sa.select(sales.c.ref, sales.c.seq, sales.c.kind, sales.c.total,
                          sales.c.lines, sales.c.wallet_id, sales.c.status)
                .where(sales.c.device_id == device_id).order_by(sales.c.seq))).all()
        report = await audit(engine)
    finally:
        await engine.dispose()
    return [tuple(r) for r in rows], report


@pytest.fixture
def server(sqlite_factory: DatabaseFactory) -> Any:
    live = LiveServer(sqlite_factory.new(), json.loads(json.dumps(sqlite_factory.demo)))
    live.start()
    yield live
    live.stop()


@pytest.mark.parametrize("step", step_names())
def test_a_till_of_each_release_upgrades_and_drains(step: str, server: LiveServer,
                                                   tmp_path: Path) -> None:
    data_dir = tmp_path / "till"
    data_dir.mkdir()
    path = data_dir / DB_FILENAME
    shutil.copyfile(HERE / f"{step}.db", path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE device SET server_url = ?", (server.url,))
    conn.close()
    held = _fixture_contents(path)
    before = _read(path, f"SELECT {OUTBOX_V1} FROM outbox ORDER BY seq")
    queued = [s for s in held["sales"] if s["seq"] > held["acked_seq"]]
    assert len(queued) == 3 and held["acked_seq"] == 2

    # The server as the old release left it: the world, and the two sales it had synced.
    asyncio.run(_server_world(server.db_url, held))
    token = held["device"]["device_token"]
    synced = httpx.post(f"{server.url}/api/v1/sync/sales",
                        json={"sales": held["sales"][:2]},
                        headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
    assert [r["status"] for r in synced["results"]] == ["applied", "applied"]
    assert synced["acked_seq"] == 2

    term = Terminal(data_dir)
    db = term.db                                                  # opening migrates
    assert not migrations.pending(db)
    assert _read(path, f"SELECT {OUTBOX_V1} FROM outbox ORDER BY seq") == before
    status = term.status()
    assert (status["queued"], status["queued_total"]) == (
        3, sum(s["total"] for s in queued if s["kind"] == "sale"))
    assert [row.wire() for row in term.history()][::-1] == held["sales"]

    report = term.sync_once()
    assert report.completed, report.error
    assert (report.counts["applied"], report.acked_seq) == (3, 5)
    assert term.status()["queued"] == 0
    on_server, ledger = asyncio.run(_server_sales(server.db_url, held["device"]["device_id"]))
    assert [(ref, seq, kind, total, lines, wallet) for ref, seq, kind, total, lines, wallet, _
            in on_server] == [(s["ref"], s["seq"], s["kind"], s["total"], s["lines"],
                               s["wallet_id"]) for s in held["sales"]]
    assert {status for *_, status in on_server} == {"applied"}
    assert ledger["ok"], ledger

    # The till goes on selling after the upgrade: the next seq after the old ones.
    # (Omar: the server counts the week-old sales on the day they arrived, which used up
    # Sara's daily limit.)
    omar = next(c["uid"] for c in held["credentials"] if c["wallet_id"] == "wal_fixture_omar")
    water = held["products"][0]["product_id"]
    receipt = term.record_sale(held["cashiers"][0]["cashier_id"], [(water, 1)], uid=omar)
    assert receipt.seq == len(held["sales"]) + 1
    assert term.sync_once().counts["applied"] == 1
    assert term.status()["queued"] == 0
    on_server, ledger = asyncio.run(_server_sales(server.db_url, held["device"]["device_id"]))
    assert [seq for _, seq, *_ in on_server] == list(range(1, receipt.seq + 1))
    assert ledger["ok"], ledger
    # Every wallet's balance on the server is its opening minus what was applied against it.
    spent = {w: 0 for w in OPENING}
    for _, _, kind, total, _, wallet, _ in on_server:
        spent[wallet] += total if kind == "sale" else -total
    assert {w["wallet_id"]: w["balance"] for w in server_balances(server.db_url)} == {
        w: OPENING[w] - spent[w] for w in OPENING}


def server_balances(db_url: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        engine = create_engine(db_url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(sa.select(wallets.c.wallet_id, wallets.c.balance)
                                          .where(wallets.c.wallet_id.in_(list(OPENING))))
                return [dict(r._mapping) for r in rows]
        finally:
            await engine.dispose()
    return asyncio.run(read())
