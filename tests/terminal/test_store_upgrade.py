"""A terminal in the field upgrades with sales still queued: its SQLite file, written by the
previous release (schema up to m003), opens with this one, keeps every queued sale exactly,
gains the v1.1 snapshot columns, and asks for a full snapshot next (so every wallet gets its
restrictions, not only those a delta happens to bring)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from terminal.core import Terminal
from terminal.store import outbox, snapshot
from terminal.store.db import DB_FILENAME
from terminal.store.rows import build, fetch_one
from terminal.store.schema import migrations

from .conftest import T0, SettableClock

UID = "04A1B2C3D4E5F6"


def previous_release_file(data_dir: Path) -> None:
    """The file as the release before v1.1 snapshots left it: two sales queued, one synced,
    a delta cursor kept."""
    data_dir.mkdir(parents=True)
    db = Database(data_dir / DB_FILENAME)
    migrations.apply(db, stop_before="m004_restrictions_positions")
    conn = db.conn
    with conn:
        conn.execute("INSERT INTO device VALUES (1, 'dev_old', 'tok-secret', 'sch', 'SAR',"
                     " 'http://127.0.0.1:9', 'Counter 1', ?)", (T0.isoformat(),))
        conn.execute(
            "UPDATE sync_state SET cursor = 'delta-77', settings_json = ?, last_sync_at = ?,"
            " snapshot_at = ?, last_contact_at = ?, last_contact_ok = 1, acked_seq = 1,"
            " synced_seq = 1, epoch = 3 WHERE id = 1",
            (json.dumps({"currency": "SAR", "offline_max_sale": 5000,
                         "offline_max_unsynced_total": 20000, "offline_max_hours": 72,
                         "overdraft_limit": 0, "timezone": "Asia/Riyadh"}),
             T0.isoformat(), T0.isoformat(), T0.isoformat()))
        conn.execute("INSERT INTO wallets (wallet_id, display_name, balance, daily_limit,"
                     " status, balance_as_of, snapshot_epoch, spent_today)"
                     " VALUES ('w1', 'Sara A.', 5000, 1500, 'active', ?, 3, 0)",
                     (T0.isoformat(),))
        conn.execute("INSERT INTO credentials VALUES (?, 'w1', 'active', 3)", (UID,))
        conn.execute("INSERT INTO products VALUES ('water', 'Water 330ml', 150, 'Drinks', 1, 3)")
        conn.execute("INSERT INTO cashiers VALUES ('cash1', 'Amal', 'x', 1, 3)")
        for seq, acked, outcome in ((1, 1, "applied"), (2, 0, None), (3, 0, None)):
            conn.execute(
                "INSERT INTO outbox (seq, ref, kind, created_at, school_day, cashier_id,"
                " wallet_id, credential_uid, lines_json, total, offline, outcome, acked,"
                " applied_epoch) VALUES (?, ?, 'sale', ?, '2026-11-22', 'cash1', 'w1', ?,"
                " ?, 150, 1, ?, ?, ?)",
                (seq, f"ref-{seq}", T0.isoformat(), UID,
                 json.dumps([{"product_id": "water", "name": "Water 330ml", "quantity": 1,
                              "unit_price": 150}]), outcome, acked,
                 2 if outcome else None))
        conn.execute("UPDATE seq_counter SET last_seq = 3")
    db.close()


def rows_of(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM outbox ORDER BY seq").fetchall()


def test_upgrade_keeps_queued_sales_and_asks_for_a_full_snapshot(tmp_path: Path) -> None:
    data_dir = tmp_path / "t"
    previous_release_file(data_dir)
    before = rows_of(data_dir / DB_FILENAME)

    term = Terminal(data_dir, clock=SettableClock())
    db = term.db                                      # opening migrates
    assert not migrations.pending(db)
    assert rows_of(data_dir / DB_FILENAME) == before   # not a byte of a sale changed
    status = term.status()
    assert (status["queued"], status["queued_total"], status["last_seq"]) == (2, 300, 3)
    assert [row.seq for row in outbox.unacked_batch(db.conn, 0, 10)] == [2, 3]
    assert term.history()[0].lines == [{"product_id": "water", "name": "Water 330ml",
                                        "quantity": 1, "unit_price": 150}]
    # the old rows read with the new columns' defaults
    old = snapshot.get_wallet(db, "w1")
    assert old is not None and (old.grade, old.homeroom, bool(old.restrictions)) == (
        None, None, False)
    assert (old.balance, old.daily_limit, old.spent_today) == (5000, 1500, 0)
    water = snapshot.get_product(db, "water")
    assert water is not None and (water.allergens, water.position) == ((), None)
    # the next pull is a full snapshot
    assert term.db.conn.execute("SELECT cursor FROM sync_state").fetchone()[0] is None
    # and the till goes on selling, with the seq after the queued ones
    receipt = term.record_sale("cash1", [("water", 1)], uid=UID)
    # seq 1 is in the balance already (applied before the snapshot), 2 and 3 are not
    assert receipt.seq == 4 and receipt.balance_estimate == 5000 - 2 * 150 - 150


def test_rows_are_read_by_column_name(tmp_path: Path) -> None:
    """The dataclasses are filled by name: columns in another order land in the right
    fields, and a missing column is an error rather than a shifted value."""
    from terminal.store.snapshot import Wallet

    conn = sqlite3.connect(":memory:")
    row = fetch_one(conn, "SELECT 'x' AS status, 7 AS balance, 'w' AS wallet_id,"
                    " 'S' AS display_name, NULL AS daily_limit, 't' AS balance_as_of,"
                    " 1 AS snapshot_epoch, 2 AS spent_today, 'G' AS grade, 'H' AS homeroom,"
                    " '{}' AS restrictions")
    assert row is not None
    wallet = build(Wallet, row, {"restrictions": lambda text: text})
    assert (wallet.wallet_id, wallet.balance, wallet.status, wallet.spent_today) == (
        "w", 7, "x", 2)
    short = fetch_one(conn, "SELECT 'w' AS wallet_id")
    assert short is not None
    with pytest.raises(IndexError):
        build(Wallet, short)
