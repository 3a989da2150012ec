"""Opening the terminal's SQLite file with the durability settings every write relies on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from terminal.store import namefold
from terminal.store.schema import migrations

DB_FILENAME = "terminal.db"


def open_database(data_dir: Path) -> Database:
    """Open (creating if needed) and migrate the store in ``data_dir``.

    WAL lets the sync thread read and write while a sale commits; ``synchronous=FULL`` makes
    every commit reach the disk before it returns, which is what lets the terminal tell the
    cashier "done". ``busy_timeout`` turns a brief lock held by the other connection into a
    short wait instead of an error.
    """
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = data_dir / DB_FILENAME
    fresh = not path.exists()
    db = Database(path)
    db.conn.execute("PRAGMA busy_timeout = 10000")
    if fresh:
        # The file holds the device token: readable by the terminal's user only.
        os.chmod(path, 0o600)
    mode = db.conn.execute("PRAGMA journal_mode").fetchone()[0]
    if mode != "wal":
        db.enable_wal()
    db.conn.execute("PRAGMA synchronous = FULL")
    db.conn.execute("PRAGMA foreign_keys = ON")
    namefold.register(db.conn)
    if migrations.pending(db):
        migrations.apply(db)
    return db


@contextmanager
def writing(db: Database) -> Iterator[Database]:
    """A write transaction that takes SQLite's write lock when it begins (``BEGIN IMMEDIATE``).

    sqlite-utils' ``atomic()`` begins DEFERRED: the first read pins a WAL snapshot, and when
    the other connection (a sale on the UI thread) commits before this transaction's first
    write, the upgrade fails at once with "database is locked". ``busy_timeout`` cannot help
    there, since waiting never makes the old snapshot current. Under load that killed the sync
    thread while it stored push results during a rush (tests/server/test_two_hosts.py).
    Taking the lock first makes either side wait its turn within ``busy_timeout`` instead.
    Inside a transaction already, this is a savepoint of it."""
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")
