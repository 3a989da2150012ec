"""Re-deriving every balance from the postings (``pos-server audit-ledger``).

Balances and sums here; that every posting belongs to one business event and that refunds
and payments obey their rules, in :mod:`.audit_events`; that the report rollups equal what
they summarise, in :mod:`.audit_rollups`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..storage.schema import accounts, devices, postings, schools, wallets
from . import audit_events, audit_rollups, seqs

GAPS_SQL = sa.text("""
SELECT prev + 1 AS gap_start, seq - 1 AS gap_end FROM (
  SELECT seq, LAG(seq, 1, 0) OVER (ORDER BY seq) AS prev
  FROM device_seqs WHERE device_id = :device_id
) AS t WHERE seq - prev > 1 ORDER BY seq LIMIT :limit
""")


async def audit(engine: AsyncEngine) -> dict[str, Any]:
    report: dict[str, Any] = {"ok": True, "schools": []}
    async with engine.connect() as conn:
        conn = await conn.execution_options(readonly=True)  # SQLite: BEGIN DEFERRED
        school_ids = (await conn.execute(
            sa.select(schools.c.school_id).order_by(schools.c.school_id))).scalars().all()
        for school_id in school_ids:
            report["schools"].append(await _audit_school(conn, school_id))
        report["ok"] = all(s["ok"] for s in report["schools"])
        for s in report["schools"]:
            del s["ok"]
    return report


async def _audit_school(conn: AsyncConnection, school_id: str) -> dict[str, Any]:
    # Net of every account of the school, from the journal alone.
    received = (sa.select(postings.c.to_account.label("account"),
                          postings.c.amount.label("amount"))
                .where(postings.c.school_id == school_id))
    sent = (sa.select(postings.c.from_account.label("account"),
                      (-postings.c.amount).label("amount"))
            .where(postings.c.school_id == school_id))
    entries = sa.union_all(received, sent).subquery()
    net = (sa.select(entries.c.account, sa.func.sum(entries.c.amount).label("net"))
           .group_by(entries.c.account).subquery())
    # Summed over this school's accounts only: a posting that touches an account of another
    # school, or none, leaves a non-zero sum here.
    total = (await conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(net.c.net), 0))
        .select_from(net.join(accounts, accounts.c.account_id == net.c.account))
        .where(accounts.c.school_id == school_id))).scalar_one()
    rows = (await conn.execute(
        sa.select(wallets.c.wallet_id, wallets.c.balance,
                  sa.func.coalesce(net.c.net, 0).label("derived"))
        .select_from(wallets.outerjoin(net, net.c.account == wallets.c.wallet_id))
        .where(wallets.c.school_id == school_id))).all()
    mismatches = [{"wallet_id": r.wallet_id, "balance": int(r.balance),
                   "postings_sum": int(r.derived)}
                  for r in rows if int(r.balance) != int(r.derived)]
    stray = (await conn.execute(
        sa.select(net.c.account).select_from(
            net.outerjoin(accounts, sa.and_(accounts.c.account_id == net.c.account,
                                            accounts.c.school_id == school_id)))
        .where(accounts.c.account_id.is_(None)).limit(100))).scalars().all()
    posted_twice = (await conn.execute(
        sa.select(postings.c.sale_ref)
        .where(postings.c.school_id == school_id, postings.c.kind.in_(("sale", "void")))
        .group_by(postings.c.sale_ref).having(sa.func.count() > 1)
        .limit(100))).scalars().all()
    missing: dict[str, list[int]] = {}
    device_ids = (await conn.execute(
        sa.select(devices.c.device_id).where(devices.c.school_id == school_id)
        .order_by(devices.c.device_id))).scalars().all()
    for device_id in device_ids:
        gaps: list[int] = []
        limit = seqs.MISSING_LIMIT
        for gap in await conn.execute(GAPS_SQL, {"device_id": device_id, "limit": limit}):
            gaps.extend(range(int(gap.gap_start),
                              min(int(gap.gap_end), int(gap.gap_start) + limit) + 1))
            if len(gaps) >= limit:
                break
        if gaps:
            missing[device_id] = gaps[:limit]
    events = await audit_events.check(conn, school_id)
    events.update(await audit_rollups.check(conn, school_id))
    ok = (int(total) == 0 and not mismatches and not stray and not posted_twice
          and not any(events.values()))
    return {"school_id": school_id, "ok": ok, "postings_sum": int(total), "wallets": len(rows),
            "balance_mismatches": mismatches, "foreign_accounts": list(stray),
            "refs_posted_twice": list(posted_twice), **events, "missing_seqs": missing}
