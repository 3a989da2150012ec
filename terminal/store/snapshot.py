"""The local copy of the school's snapshot: wallets, bracelets, products, cashiers, settings.

Each pull writes rows stamped with the pull's *epoch* (see :mod:`terminal.store.outbox` for
how the balance estimate uses it). A full snapshot also removes rows it did not mention, so a
terminal that was away long enough to get a full snapshot cannot keep selling to a wallet the
server no longer has.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from terminal.selling.restrictions import NO_RESTRICTIONS, Restrictions
from terminal.store.db import writing
from terminal.store.rows import build, fetch_all, fetch_one

if TYPE_CHECKING:
    from shared.protocol import SnapshotResponse

SNAPSHOT_TABLES = ("wallets", "credentials", "products", "cashiers")


@dataclass(frozen=True, slots=True)
class Wallet:
    wallet_id: str
    display_name: str
    balance: int
    daily_limit: int | None
    status: str
    balance_as_of: str
    snapshot_epoch: int
    spent_today: int | None      # the server's figure for balance_as_of's day; None: not sent
    grade: str | None = None
    homeroom: str | None = None
    restrictions: Restrictions = NO_RESTRICTIONS


@dataclass(frozen=True, slots=True)
class Credential:
    uid: str
    wallet_id: str
    status: str


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    name: str
    price: int
    category: str
    active: bool
    allergens: tuple[str, ...] = ()
    position: int | None = None  # the admin-set button order; None: not set (goes last)


@dataclass(frozen=True, slots=True)
class Cashier:
    cashier_id: str
    name: str
    pin_hash: str
    active: bool


def apply_page(db: Database, page: SnapshotResponse, epoch: int) -> bool:
    """Write one snapshot page in one short transaction (upserts, so replaying a page after an
    interrupted pull is harmless). Returns whether the school's settings differ from the ones
    stored before (so the views that show them redraw only then)."""
    conn = db.conn
    settings_json = page.settings.model_dump_json()
    # Read before the transaction: a read inside a deferred transaction that then writes fails
    # at once with "database is locked" (no busy wait) when the GUI thread committed a sale
    # in between. Only this (the sync) thread writes the settings, so nothing is missed.
    before = conn.execute("SELECT settings_json FROM sync_state WHERE id = 1").fetchone()
    with writing(db):
        conn.executemany(
            "INSERT INTO wallets (wallet_id, display_name, balance, daily_limit, status,"
            " balance_as_of, snapshot_epoch, spent_today, grade, homeroom, restrictions_json)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (wallet_id) DO UPDATE SET display_name = excluded.display_name,"
            " balance = excluded.balance, daily_limit = excluded.daily_limit,"
            " status = excluded.status, balance_as_of = excluded.balance_as_of,"
            " snapshot_epoch = excluded.snapshot_epoch, spent_today = excluded.spent_today,"
            " grade = excluded.grade, homeroom = excluded.homeroom,"
            " restrictions_json = excluded.restrictions_json",
            [(w.wallet_id, w.display_name, w.balance, w.daily_limit, w.status,
              w.balance_as_of.isoformat(), epoch, w.spent_today, w.grade, w.homeroom,
              w.restrictions.model_dump_json()) for w in page.wallets])
        conn.executemany(
            "INSERT INTO credentials (uid, wallet_id, status, snapshot_epoch)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (uid) DO UPDATE SET"
            " wallet_id = excluded.wallet_id, status = excluded.status,"
            " snapshot_epoch = excluded.snapshot_epoch",
            [(c.uid.upper(), c.wallet_id, c.status, epoch) for c in page.credentials])
        conn.executemany(
            "INSERT INTO products (product_id, name, price, category, active, snapshot_epoch,"
            " allergens_json, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (product_id) DO UPDATE SET"
            " name = excluded.name, price = excluded.price, category = excluded.category,"
            " active = excluded.active, snapshot_epoch = excluded.snapshot_epoch,"
            " allergens_json = excluded.allergens_json, position = excluded.position",
            [(p.product_id, p.name, p.price, p.category, int(p.active), epoch,
              json.dumps(p.allergens, ensure_ascii=False), p.position)
             for p in page.products])
        conn.executemany(
            "INSERT INTO cashiers (cashier_id, name, pin_hash, active, snapshot_epoch)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (cashier_id) DO UPDATE SET"
            " name = excluded.name, pin_hash = excluded.pin_hash, active = excluded.active,"
            " snapshot_epoch = excluded.snapshot_epoch",
            [(c.cashier_id, c.name, c.pin_hash, int(c.active), epoch) for c in page.cashiers])
        conn.execute("UPDATE sync_state SET settings_json = ? WHERE id = 1", (settings_json,))
    return before is None or before[0] != settings_json


def finish_pull(db: Database, *, epoch: int, cursor: str, full: bool, at: datetime,
                server_time: datetime) -> None:
    """Close a complete pull: keep its delta cursor; after a full one, drop what it omitted."""
    with writing(db):
        if full:
            for table in SNAPSHOT_TABLES:
                db.conn.execute(f"DELETE FROM {table} WHERE snapshot_epoch < ?", (epoch,))  # noqa: S608
        db.conn.execute(
            "UPDATE sync_state SET cursor = ?, snapshot_at = ?, snapshot_server_time = ?"
            " WHERE id = 1", (cursor, at.isoformat(), server_time.isoformat()))


_WALLET = ("SELECT wallet_id, display_name, balance, daily_limit, status, balance_as_of,"
           " snapshot_epoch, spent_today, grade, homeroom, restrictions_json AS restrictions"
           " FROM wallets")
_WALLET_CONVERT = {"restrictions": Restrictions.from_json}
_PRODUCT = ("SELECT product_id, name, price, category, active,"
            " allergens_json AS allergens, position FROM products")


def _allergens(text: str | None) -> tuple[str, ...]:
    return tuple(str(a) for a in json.loads(text or "[]"))


_PRODUCT_CONVERT: dict[str, Callable[[Any], Any]] = {"active": bool, "allergens": _allergens}
_CASHIER = "SELECT cashier_id, name, pin_hash, active FROM cashiers"


def get_wallet(db: Database, wallet_id: str) -> Wallet | None:
    row = fetch_one(db.conn, f"{_WALLET} WHERE wallet_id = ?", (wallet_id,))
    return build(Wallet, row, _WALLET_CONVERT) if row else None


def get_credential(db: Database, uid: str) -> Credential | None:
    row = fetch_one(db.conn, "SELECT uid, wallet_id, status FROM credentials WHERE uid = ?",
                    (uid,))
    return build(Credential, row) if row else None


def wallet_bracelets(db: Database, wallet_id: str) -> list[str]:
    """The UIDs of the wallet's active bracelets (for the lookup, which shows them masked)."""
    rows = fetch_all(db.conn, "SELECT uid FROM credentials WHERE wallet_id = ?"
                     " AND status = 'active' ORDER BY uid", (wallet_id,))
    return [row["uid"] for row in rows]


def get_product(db: Database, product_id: str) -> Product | None:
    row = fetch_one(db.conn, f"{_PRODUCT} WHERE product_id = ?", (product_id,))
    return build(Product, row, _PRODUCT_CONVERT) if row else None


def list_products(db: Database) -> list[Product]:
    """The active catalog, as the sale screen shows it: in the admins' ``position`` order
    (their hotkeys follow it), products without one last, by name."""
    rows = fetch_all(db.conn, f"{_PRODUCT} WHERE active = 1"
                     " ORDER BY position IS NULL, position, name, product_id")
    return [build(Product, r, _PRODUCT_CONVERT) for r in rows]


def get_cashier(db: Database, cashier_id: str) -> Cashier | None:
    row = fetch_one(db.conn, f"{_CASHIER} WHERE cashier_id = ?", (cashier_id,))
    return build(Cashier, row, {"active": bool}) if row else None


def list_cashiers(db: Database) -> list[Cashier]:
    rows = fetch_all(db.conn, f"{_CASHIER} WHERE active = 1 ORDER BY name")
    return [build(Cashier, r, {"active": bool}) for r in rows]


def counts(db: Database) -> dict[str, int]:
    return {t: db.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608
            for t in SNAPSHOT_TABLES}
