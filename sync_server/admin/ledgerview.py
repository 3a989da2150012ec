"""Reading the journal for display: a wallet's history and a sale's postings.

The only admin module that knows how postings are laid out: one row per movement with
``from_account``/``to_account`` and a positive amount. Both views show one signed line per
account touched. Lookups go through indexed columns only (the accounts, or posting IDs that
the sale rows carry), so a page stays fast however long the journal grows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..storage.schema import money_ops, postings, sales


@dataclass(frozen=True, slots=True)
class Entry:
    txn_id: str
    kind: str
    sale_ref: str | None
    posted_at: datetime
    memo: str | None
    account_id: str
    amount: int  # signed, as seen from ``account_id``


async def wallet_history(conn: AsyncConnection, school_id: str, wallet_id: str, *,
                         limit: int, offset: int) -> tuple[list[Entry], int]:
    """Newest first, plus the sum of the wallet's entries newer than the first one returned
    (so the caller can show a running balance on any page)."""
    p = postings.c
    signed = sa.case((p.to_account == wallet_id, p.amount), else_=-p.amount)
    touches = sa.or_(p.to_account == wallet_id, p.from_account == wallet_id)
    rows = (await conn.execute(
        sa.select(p.posting_id, signed.label("signed"), p.kind, p.sale_ref, p.posted_at,
                  p.memo)
        .where(p.school_id == school_id, touches)
        .order_by(p.posted_at.desc(), p.posting_id.desc()).limit(limit).offset(offset))).all()
    entries = [Entry(r.posting_id, r.kind, r.sale_ref, r.posted_at, r.memo, wallet_id,
                     int(r.signed)) for r in rows]
    newer = 0
    if rows and offset:
        first = rows[0]
        newer = int((await conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(signed), 0))
            .where(p.school_id == school_id, touches,
                   sa.or_(p.posted_at > first.posted_at,
                          sa.and_(p.posted_at == first.posted_at,
                                  p.posting_id > first.posting_id))))).scalar_one())
    return entries, newer


async def sale_entries(conn: AsyncConnection, school_id: str, txn_id: str | None,
                       refund: Any) -> list[Entry]:
    """Everything posted for a sale: its own posting, and the one of the void or admin
    reversal that refunded it (``refund``: its ``sale_refunds`` row, or None)."""
    ids = [txn_id] if txn_id else []
    if refund is not None and refund.kind == "void":
        void_txn = (await conn.execute(
            sa.select(sales.c.txn_id).where(sales.c.school_id == school_id,
                                            sales.c.ref == refund.void_ref))).scalar_one_or_none()
        if void_txn:
            ids.append(void_txn)
    elif refund is not None:
        ids.append((await conn.execute(sa.select(money_ops.c.posting_id).where(
            money_ops.c.op_id == refund.op_id))).scalar_one())
    if not ids:
        return []
    p = postings.c
    rows = (await conn.execute(
        sa.select(postings).where(p.school_id == school_id, p.posting_id.in_(ids))
        .order_by(p.posted_at, p.posting_id))).all()
    out: list[Entry] = []
    for r in rows:
        out.append(Entry(r.posting_id, r.kind, r.sale_ref, r.posted_at, r.memo,
                         r.from_account, -int(r.amount)))
        out.append(Entry(r.posting_id, r.kind, r.sale_ref, r.posted_at, r.memo,
                         r.to_account, int(r.amount)))
    return out
