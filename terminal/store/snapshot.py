"""The local copy of the school's snapshot: wallets, bracelets, products, cashiers, settings.

Each pull writes rows stamped with the pull's *epoch* (see :mod:`terminal.store.outbox` for
how the balance estimate uses it). A full snapshot also removes rows it did not mention, so a
terminal that was away long enough to get a full snapshot cannot keep selling to a wallet the
server no longer has.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlite_utils import Database

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


@dataclass(frozen=True, slots=True)
class Cashier:
    cashier_id: str
    name: str
    pin_hash: str
    active: bool


def apply_page(db: Database, page: SnapshotResponse, epoch: int) -> None:
    """Write one snapshot page in one short transaction (upserts, so replaying a page after an
    interrupted pull is harmless)."""
    conn = db.conn
    with db.atomic():
        conn.executemany(
            "INSERT INTO wallets (wallet_id, display_name, balance, daily_limit, status,"
            " balance_as_of, snapshot_epoch, spent_today) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (wallet_id) DO UPDATE SET display_name = excluded.display_name,"
            " balance = excluded.balance, daily_limit = excluded.daily_limit,"
            " status = excluded.status, balance_as_of = excluded.balance_as_of,"
            " snapshot_epoch = excluded.snapshot_epoch, spent_today = excluded.spent_today",
            [(w.wallet_id, w.display_name, w.balance, w.daily_limit, w.status,
              w.balance_as_of.isoformat(), epoch, w.spent_today) for w in page.wallets])
        conn.executemany(
            "INSERT INTO credentials (uid, wallet_id, status, snapshot_epoch)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (uid) DO UPDATE SET"
            " wallet_id = excluded.wallet_id, status = excluded.status,"
            " snapshot_epoch = excluded.snapshot_epoch",
            [(c.uid.upper(), c.wallet_id, c.status, epoch) for c in page.credentials])
        conn.executemany(
            "INSERT INTO products (product_id, name, price, category, active, snapshot_epoch)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (product_id) DO UPDATE SET"
            " name = excluded.name, price = excluded.price, category = excluded.category,"
            " active = excluded.active, snapshot_epoch = excluded.snapshot_epoch",
            [(p.product_id, p.name, p.price, p.category, int(p.active), epoch)
             for p in page.products])
        conn.executemany(
            "INSERT INTO cashiers (cashier_id, name, pin_hash, active, snapshot_epoch)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (cashier_id) DO UPDATE SET"
            " name = excluded.name, pin_hash = excluded.pin_hash, active = excluded.active,"
            " snapshot_epoch = excluded.snapshot_epoch",
            [(c.cashier_id, c.name, c.pin_hash, int(c.active), epoch) for c in page.cashiers])
        conn.execute("UPDATE sync_state SET settings_json = ? WHERE id = 1",
                     (page.settings.model_dump_json(),))


def finish_pull(db: Database, *, epoch: int, cursor: str, full: bool, at: datetime,
                server_time: datetime) -> None:
    """Close a complete pull: keep its delta cursor; after a full one, drop what it omitted."""
    with db.atomic():
        if full:
            for table in SNAPSHOT_TABLES:
                db.conn.execute(f"DELETE FROM {table} WHERE snapshot_epoch < ?", (epoch,))  # noqa: S608
        db.conn.execute(
            "UPDATE sync_state SET cursor = ?, snapshot_at = ?, snapshot_server_time = ?"
            " WHERE id = 1", (cursor, at.isoformat(), server_time.isoformat()))


def get_wallet(db: Database, wallet_id: str) -> Wallet | None:
    row = db.conn.execute(
        "SELECT wallet_id, display_name, balance, daily_limit, status, balance_as_of,"
        " snapshot_epoch, spent_today FROM wallets WHERE wallet_id = ?",
        (wallet_id,)).fetchone()
    return Wallet(*row) if row else None


def get_credential(db: Database, uid: str) -> Credential | None:
    row = db.conn.execute(
        "SELECT uid, wallet_id, status FROM credentials WHERE uid = ?", (uid,)).fetchone()
    return Credential(*row) if row else None


def get_product(db: Database, product_id: str) -> Product | None:
    row = db.conn.execute(
        "SELECT product_id, name, price, category, active FROM products WHERE product_id = ?",
        (product_id,)).fetchone()
    return Product(row[0], row[1], row[2], row[3], bool(row[4])) if row else None


def list_products(db: Database) -> list[Product]:
    """The active catalog, as the sale screen shows it."""
    rows = db.conn.execute("SELECT product_id, name, price, category, active FROM products"
                           " WHERE active = 1 ORDER BY category, name").fetchall()
    return [Product(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]


def get_cashier(db: Database, cashier_id: str) -> Cashier | None:
    row = db.conn.execute(
        "SELECT cashier_id, name, pin_hash, active FROM cashiers WHERE cashier_id = ?",
        (cashier_id,)).fetchone()
    return Cashier(row[0], row[1], row[2], bool(row[3])) if row else None


def list_cashiers(db: Database) -> list[Cashier]:
    rows = db.conn.execute(
        "SELECT cashier_id, name, pin_hash, active FROM cashiers WHERE active = 1"
        " ORDER BY name").fetchall()
    return [Cashier(r[0], r[1], r[2], bool(r[3])) for r in rows]


def counts(db: Database) -> dict[str, int]:
    return {t: db.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608
            for t in SNAPSHOT_TABLES}
