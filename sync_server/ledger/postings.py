"""Writing postings: the only place the journal and wallet balances change.

A posting moves a positive amount from one account to another, so it cannot be unbalanced.
Balances move with ``balance = balance + :delta`` in SQL, in the same transaction as the
postings, never read-modify-write in Python (a balance drift bug lost real money in a festival
system that did it the other way).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import UpdateBase

from ..reports import rollup_writes
from ..storage.bulk import RowShape, insert_shape, statement_shape
from ..storage.schema import Money, postings, wallets

COLUMNS = ("posting_id", "school_id", "kind", "from_account", "to_account", "amount",
           "sale_ref", "occurred_at", "posted_at", "memo", "actor")


class InvalidPosting(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Posting:
    posting_id: str
    school_id: str
    kind: str
    from_account: str
    to_account: str
    amount: int
    occurred_at: datetime
    posted_at: datetime
    sale_ref: str | None = None
    memo: str | None = None
    actor: str | None = None

    def check(self) -> None:
        if self.amount <= 0:
            raise InvalidPosting(f"posting {self.posting_id}: amount must be positive")
        if self.from_account == self.to_account:
            raise InvalidPosting(f"posting {self.posting_id}: needs two different accounts")

    def encoded(self, dialect: sa.Dialect) -> tuple[Any, ...]:
        """Checked, in driver form: what :func:`write` takes."""
        self.check()
        return shape(dialect).encode((
            self.posting_id, self.school_id, self.kind, self.from_account, self.to_account,
            self.amount, self.sale_ref, self.occurred_at, self.posted_at, self.memo, self.actor))


def shape(dialect: sa.Dialect) -> RowShape:
    return insert_shape(postings, COLUMNS, dialect)


async def post(conn: AsyncConnection, items: Iterable[Posting], wallet_ids: set[str],
               version: int | None = None) -> None:
    """Insert postings and move the cached balance of every wallet they touch.

    ``wallet_ids`` names the accounts that are wallets (system accounts' balances are derived
    from the journal when needed). The caller holds those wallets' locks.
    """
    rows = []
    deltas: dict[str, int] = defaultdict(int)
    for p in items:
        rows.append(p.encoded(conn.dialect))
        if p.to_account in wallet_ids:
            deltas[p.to_account] += p.amount
        if p.from_account in wallet_ids:
            deltas[p.from_account] -= p.amount
    await write(conn, rows, deltas, version)


async def write(conn: AsyncConnection, rows: list[tuple[Any, ...]], deltas: dict[str, int],
                version: int | None, *, zone: ZoneInfo | None = None) -> None:
    """Insert encoded postings (from :meth:`Posting.encoded`) and move wallet balances by
    ``deltas``, which must be exactly what those postings do to the wallets (the sales push
    sums them while judging). With ``version``, the same UPDATE stamps the wallets for the
    next snapshot delta (one pass, not two). The wallets' per-day nets (a report rollup)
    move in the same call; ``zone``: the rows' school's time zone, when the caller has read
    it in this transaction."""
    await shape(conn.dialect).execute(conn, rows)
    await rollup_writes.postings_written(conn, rows, deltas, zone)
    changed = [(w, d) for w, d in sorted(deltas.items()) if d]
    if not changed:
        return
    if version is None:
        await statement_shape(_move, _MOVE_TYPES, conn.dialect).execute(
            conn, [(d, w) for w, d in changed])
    else:
        await statement_shape(_move_and_stamp, _STAMP_TYPES, conn.dialect).execute(
            conn, [(d, version, w) for w, d in changed])


_MOVE_TYPES = (("d", Money()), ("w", sa.String()))
_STAMP_TYPES = (("d", Money()), ("v", sa.BigInteger()), ("w", sa.String()))


def _move() -> UpdateBase:
    return (sa.update(wallets).where(wallets.c.wallet_id == sa.bindparam("w"))
            .values(balance=wallets.c.balance + sa.bindparam("d", type_=Money)))


def _move_and_stamp() -> UpdateBase:
    return (sa.update(wallets).where(wallets.c.wallet_id == sa.bindparam("w"))
            .values(balance=wallets.c.balance + sa.bindparam("d", type_=Money),
                    version=sa.bindparam("v", type_=sa.BigInteger)))


async def lock_wallets(conn: AsyncConnection, school_id: str,
                       wallet_ids: Iterable[str]) -> dict[str, sa.Row[Any]]:
    """Lock this school's wallets in one fixed (sorted) order and return their rows.

    Sorted locking is what keeps concurrent batches from deadlocking on PostgreSQL (measured:
    unsorted batches from 8 clients collapsed through deadlocks). SQLite ignores FOR UPDATE;
    its IMMEDIATE transaction already excludes other writers.
    """
    ids = sorted(set(wallet_ids))
    if not ids:
        return {}
    rows = await conn.execute(
        sa.select(wallets.c.wallet_id, wallets.c.balance, wallets.c.status,
                  wallets.c.daily_limit, wallets.c.school_id)
        .where(wallets.c.school_id == school_id, wallets.c.wallet_id.in_(ids))
        .order_by(wallets.c.wallet_id)
        .with_for_update()
    )
    return {str(row.wallet_id): row for row in rows}  # type: ignore[misc]
