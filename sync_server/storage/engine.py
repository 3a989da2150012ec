"""The async engine for either database, configured so both behave the same where it matters.

SQLite: WAL with ``synchronous=FULL`` (a sale acknowledged to a terminal survives power loss),
foreign keys on, and write transactions that take the write lock at BEGIN (``BEGIN IMMEDIATE``)
so two writers never deadlock upgrading a read lock. PostgreSQL: asyncpg; row locks come from
``SELECT … FOR UPDATE`` in the ledger, which SQLAlchemy drops for SQLite, where the
IMMEDIATE transaction already excludes other writers.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

SUPPORTED = ("sqlite", "postgresql")

# Measured with benchmarks/server_push.py: a pushed batch dirties pages all over the wallet
# indexes, and with SQLite's default checkpoint every 1,000 pages (about one batch) each
# commit also copied ~4 MB back into the database. Checkpointing every 16,384 pages copies a
# page once however many batches dirtied it (commit 13 -> 8 ms per 1,000 sales); the WAL is
# cut back to 64 MB afterwards. A 32 MiB page cache per connection (default 2 MiB) keeps
# those index pages in memory instead of re-reading them from the OS.
SQLITE_TUNING = ("wal_autocheckpoint=16384", "journal_size_limit=67108864",
                 "cache_size=-32768")


# A worker opens up to twice this many connections per database as load needs them and keeps
# them open; the request queue of api/outages.py lets exactly that many requests use the
# database at once. A SQLite connection costs three open files (database, WAL, shm).
# No overflow connections: SQLAlchemy closes an overflow connection as soon as it is returned,
# so under load every other checkout opened a new one. At 500 tills that was 40 PostgreSQL
# backends forked per second, each preparing every statement afresh (2,334 sessions in a 60 s
# fleet run; benchmarks/fleet.py, 2026-11-28).
POOL_SIZE = {"sqlite": 4, "postgresql": 10}
# asyncpg waits 60 s for a connection by default: a database host that drops packets would
# hold every request that long. A refused connection fails at once anyway.
CONNECT_TIMEOUT_SECONDS = 10


class DatabaseURLError(ValueError):
    pass


def async_url(url: str) -> sa.URL:
    """``sqlite:///x.db`` / ``postgresql://u@h/db`` (the CLI's forms) -> async driver URLs."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise DatabaseURLError(f"not a database URL: {url!r}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise DatabaseURLError("sqlite needs a file path: sqlite:///path/to/pos-server.db")
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise DatabaseURLError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def dialect_of(url: str) -> str:
    return "sqlite" if async_url(url).get_backend_name() == "sqlite" else "postgresql"


def pool_capacity(url: str, pool_size: int | None = None) -> int:
    """How many connections one engine of :func:`create_engine` may open at most."""
    return 2 * (pool_size or POOL_SIZE[dialect_of(url)])


def create_engine(url: str, *, pool_size: int | None = None, pool_timeout: float = 30.0,
                  **kwargs: Any) -> AsyncEngine:
    """``pool_timeout``: seconds a caller waits for a free connection before
    ``sqlalchemy.exc.TimeoutError`` (the server answers that 503, see api/outages.py)."""
    target = async_url(url)
    size = pool_size or POOL_SIZE[dialect_of(url)]
    # A database error's message would otherwise carry the statement's bound values into the
    # log: a DB error once logged a cashier's PIN hash and full bracelet UIDs.
    kwargs.setdefault("hide_parameters", True)
    if target.get_backend_name() == "sqlite":
        private_file(Path(target.database or ""))
        engine = create_async_engine(target, pool_size=2 * size, max_overflow=0,
                                     pool_timeout=pool_timeout, **kwargs)
        _configure_sqlite(engine)
        return engine
    # Plan every statement for its parameters. asyncpg prepares statements, and after five
    # runs PostgreSQL may switch one to a generic plan: for ``ref IN ($1 … $900)`` that plan
    # was a sequential scan comparing every row with every parameter, 1.1 s per 1,000-sale push
    # instead of 30 ms once the sales table held 60k rows (benchmarks/server_push.py).
    settings = {"plan_cache_mode": "force_custom_plan"}
    engine = create_async_engine(target, pool_size=2 * size, max_overflow=0,
                                 pool_timeout=pool_timeout,
                                 connect_args={"server_settings": settings,
                                               "timeout": CONNECT_TIMEOUT_SECONDS}, **kwargs)
    _replace_closed_connections(engine)
    # Multi-row VALUES for plain bulk INSERTs too: asyncpg's prepared executemany costs about
    # 30 us a row, which made the postings insert the slowest part of applying a batch.
    engine.sync_engine.dialect.use_insertmanyvalues_wo_returning = True
    return engine


def _replace_closed_connections(engine: AsyncEngine) -> None:
    """A pooled connection the database closed (a restart, an administrator's
    ``pg_terminate_backend``, a proxy that dropped it) is replaced before a request gets it.

    SQLAlchemy's ``pool_pre_ping`` does the same with three round trips on every checkout
    (BEGIN, an empty statement, ROLLBACK on asyncpg): a pull checks out twice, a push three
    times, so a pull (token read and an empty delta) was 3.9 transactions on PostgreSQL and
    is 1.5-1.8 now (measured 2026-11-28; the CPU difference was within the noise of a
    machine at load 10).
    asyncpg notices a closed socket by itself (its protocol's ``connection_lost``), so asking
    it costs nothing. A connection closed in the instant between that check and its first
    statement fails that one request with 503 ``database-unavailable`` (api/outages.py), and
    SQLAlchemy then replaces every connection of the pool that predates it."""

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if dbapi_connection._connection.is_closed():
            raise sa.exc.DisconnectionError("connection closed by the database")


def private_file(path: Path) -> None:
    """Make the SQLite database readable by its owner only (0600), before SQLite opens it.

    The file holds students' names, balances, bracelet UIDs and PIN hashes. SQLite creates the
    WAL and shared-memory files with the database file's own permissions, so creating the
    database 0600 (an empty file is an empty database) makes all three 0600 whatever the
    umask; a file created looser by an earlier version or a copy is tightened the same way."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            try:
                if name.stat().st_mode & 0o077:
                    name.chmod(0o600)
            except OSError:  # absent, or not ours to change
                pass
    except OSError:  # no such directory, read-only: SQLite reports it in its own words
        pass


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us emit BEGIN ourselves (SQLAlchemy's documented aiosqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON",
                       "busy_timeout=30000", *SQLITE_TUNING):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = "DEFERRED" if conn.get_execution_options().get("readonly") else "IMMEDIATE"
        conn.exec_driver_sql(f"BEGIN {mode}")


@asynccontextmanager
async def statement_reads(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """Reads whose every statement stands alone: a token look-up, or reads kept consistent by
    versions and unique keys rather than by one snapshot (a snapshot delta, what a push finds
    recorded before its lock). On PostgreSQL each statement commits on its own (autocommit),
    without the BEGIN and ROLLBACK round trips of a transaction: under READ COMMITTED a
    transaction gave these statements no more consistency, and at lunch rush a pull or a
    push paid for those two round trips in waking the database on a busy host. SQLite reads
    in a DEFERRED transaction, as ``transactions.reading`` does."""
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execution_options(isolation_level="AUTOCOMMIT")
        else:
            await conn.execution_options(readonly=True)
        yield conn
