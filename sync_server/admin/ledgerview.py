"""Reading the ledger for display: a wallet's history and a sale's postings.

The only admin module that knows how postings are laid out. It reads either layout of the
journal: signed entries grouped in ``ledger_txns`` (migration 0001 as first written), or one
row per movement with ``from_account``/``to_account`` and a positive amount (the ledger's
rework in progress). Both are shown the same way: one signed line per account touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..storage import schema

_postings = schema.metadata.tables["postings"]
_txns = schema.metadata.tables.get("ledger_txns")
SIGNED_ENTRIES = _txns is not None


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
    p = _postings.c
    if SIGNED_ENTRIES:
        assert _txns is not None
        t = _txns.c
        rows = (await conn.execute(
            sa.select(p.posting_id.label("key"), p.amount, t.txn_id, t.kind, t.sale_ref,
                      t.posted_at, t.memo)
            .join(_txns, t.txn_id == p.txn_id)
            .where(p.school_id == school_id, p.account_id == wallet_id)
            .order_by(p.posting_id.desc()).limit(limit).offset(offset))).all()
        entries = [Entry(r.txn_id, r.kind, r.sale_ref, r.posted_at, r.memo, wallet_id,
                         int(r.amount)) for r in rows]
        newer = 0
        if rows and offset:
            newer = int((await conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(p.amount), 0))
                .where(p.account_id == wallet_id, p.posting_id > rows[0].key))).scalar_one())
        return entries, newer
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


async def sale_entries(conn: AsyncConnection, school_id: str, ref: str,
                       txn_id: str | None) -> list[Entry]:
    """Everything posted for a sale: its own posting(s), a void's, an admin reversal."""
    p = _postings.c
    if SIGNED_ENTRIES:
        assert _txns is not None
        t = _txns.c
        match = [t.sale_ref == ref] + ([t.txn_id == txn_id] if txn_id else [])
        rows = (await conn.execute(
            sa.select(t.txn_id, t.kind, t.sale_ref, t.posted_at, t.memo, p.account_id,
                      p.amount)
            .join(_postings, p.txn_id == t.txn_id)
            .where(t.school_id == school_id, sa.or_(*match))
            .order_by(t.posted_at, p.posting_id))).all()
        return [Entry(r.txn_id, r.kind, r.sale_ref, r.posted_at, r.memo, r.account_id,
                      int(r.amount)) for r in rows]
    match = [p.sale_ref == ref] + ([p.posting_id == txn_id] if txn_id else [])
    rows = (await conn.execute(
        sa.select(_postings).where(p.school_id == school_id, sa.or_(*match))
        .order_by(p.posted_at, p.posting_id))).all()
    out: list[Entry] = []
    for r in rows:
        out.append(Entry(r.posting_id, r.kind, r.sale_ref, r.posted_at, r.memo,
                         r.from_account, -int(r.amount)))
        out.append(Entry(r.posting_id, r.kind, r.sale_ref, r.posted_at, r.memo,
                         r.to_account, int(r.amount)))
    return out
