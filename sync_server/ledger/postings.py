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

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..storage.bulk import bulk_insert
from ..storage.schema import postings, wallets


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


async def post(conn: AsyncConnection, items: Iterable[Posting], wallet_ids: set[str],
               version: int | None = None) -> None:
    """Insert postings and move the cached balance of every wallet they touch.

    ``wallet_ids`` names the accounts that are wallets (system accounts' balances are derived
    from the journal when needed). The caller holds those wallets' locks. With ``version``,
    the same UPDATE stamps the wallets for the next snapshot delta (one pass, not two).
    """
    rows = []
    deltas: dict[str, int] = defaultdict(int)
    for p in items:
        p.check()
        rows.append({"posting_id": p.posting_id, "school_id": p.school_id, "kind": p.kind,
                     "from_account": p.from_account, "to_account": p.to_account,
                     "amount": p.amount, "sale_ref": p.sale_ref, "occurred_at": p.occurred_at,
                     "posted_at": p.posted_at, "memo": p.memo, "actor": p.actor})
        if p.to_account in wallet_ids:
            deltas[p.to_account] += p.amount
        if p.from_account in wallet_ids:
            deltas[p.from_account] -= p.amount
    if not rows:
        return
    await bulk_insert(conn, postings, rows)
    changed = [{"w": w, "d": d} for w, d in sorted(deltas.items()) if d]
    if changed:
        values: dict[str, Any] = {
            "balance": wallets.c.balance + sa.bindparam("d", type_=sa.BigInteger)}
        if version is not None:
            values["version"] = version
        await conn.execute(
            sa.update(wallets).where(wallets.c.wallet_id == sa.bindparam("w")).values(values),
            changed,
        )


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
