"""Re-deriving every balance from the postings (``pos-server audit-ledger``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..storage.schema import devices, ledger_txns, postings, schools, wallets

GAPS_SQL = sa.text("""
SELECT prev + 1 AS gap_start, seq - 1 AS gap_end FROM (
  SELECT seq, LAG(seq, 1, 0) OVER (ORDER BY seq) AS prev
  FROM device_seqs WHERE device_id = :device_id
) AS t WHERE seq - prev > 1 ORDER BY seq LIMIT 100
""")


async def audit(engine: AsyncEngine) -> dict[str, Any]:
    report: dict[str, Any] = {"ok": True, "schools": []}
    async with engine.connect() as conn:
        school_ids = (await conn.execute(
            sa.select(schools.c.school_id).order_by(schools.c.school_id))).scalars().all()
        for school_id in school_ids:
            total = (await conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(postings.c.amount), 0))
                .where(postings.c.school_id == school_id))).scalar_one()
            derived = (sa.select(postings.c.account_id, sa.func.sum(postings.c.amount).label("s"))
                       .where(postings.c.school_id == school_id)
                       .group_by(postings.c.account_id).subquery())
            rows = (await conn.execute(
                sa.select(wallets.c.wallet_id, wallets.c.balance,
                          sa.func.coalesce(derived.c.s, 0).label("derived"))
                .select_from(wallets.outerjoin(derived,
                                               derived.c.account_id == wallets.c.wallet_id))
                .where(wallets.c.school_id == school_id))).all()
            mismatches = [{"wallet_id": r.wallet_id, "balance": int(r.balance),
                           "postings_sum": int(r.derived)}
                          for r in rows if int(r.balance) != int(r.derived)]
            unbalanced = (await conn.execute(
                sa.select(postings.c.txn_id).where(postings.c.school_id == school_id)
                .group_by(postings.c.txn_id).having(sa.func.sum(postings.c.amount) != 0)
                .limit(100))).scalars().all()
            posted_twice = (await conn.execute(
                sa.select(ledger_txns.c.sale_ref)
                .where(ledger_txns.c.school_id == school_id,
                       ledger_txns.c.kind.in_(("sale", "void")))
                .group_by(ledger_txns.c.sale_ref).having(sa.func.count() > 1)
                .limit(100))).scalars().all()
            missing: dict[str, list[int]] = {}
            device_ids = (await conn.execute(
                sa.select(devices.c.device_id).where(devices.c.school_id == school_id)
                .order_by(devices.c.device_id))).scalars().all()
            for device_id in device_ids:
                gaps: list[int] = []
                for gap in await conn.execute(GAPS_SQL, {"device_id": device_id}):
                    gaps.extend(range(int(gap.gap_start),
                                      min(int(gap.gap_end), int(gap.gap_start) + 100) + 1))
                    if len(gaps) >= 100:
                        break
                if gaps:
                    missing[device_id] = gaps[:100]
            ok = int(total) == 0 and not mismatches and not unbalanced and not posted_twice
            report["ok"] = report["ok"] and ok
            report["schools"].append({
                "school_id": school_id, "postings_sum": int(total), "wallets": len(rows),
                "balance_mismatches": mismatches, "unbalanced_txns": list(unbalanced),
                "refs_posted_twice": list(posted_twice), "missing_seqs": missing,
            })
    return report
