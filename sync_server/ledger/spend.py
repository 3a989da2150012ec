"""What a wallet has spent against its daily limit on one school day.

One definition for the two places that need it: judging a pushed sale (``daily_limit_exceeded``)
and the snapshot's ``spent_today`` (spec v1.1), so a till and the server count the same thing.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..storage.bulk import chunks
from ..storage.schema import sale_refunds, sales


async def day_spend(conn: AsyncConnection, school_id: str,
                     keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """What each (wallet, school day) has spent: its applied sales that are not voided or
    reversed. Summed from ``sales`` through the (school, wallet, day) index, and only for
    wallets with a daily limit, so pushes write no running totals at all."""
    spend: dict[tuple[str, str], int] = {}
    for chunk in chunks({w for w, _ in keys}):
        rows = await conn.execute(
            sa.select(sales.c.wallet_id, sales.c.business_day, sa.func.sum(sales.c.total))
            .where(sales.c.school_id == school_id, sales.c.wallet_id.in_(chunk),
                   sales.c.business_day.in_(sorted({d for _, d in keys})),
                   sales.c.kind == "sale", sales.c.status == "applied",
                   ~sa.exists().where(sale_refunds.c.school_id == sales.c.school_id,
                                      sale_refunds.c.sale_ref == sales.c.ref))
            .group_by(sales.c.wallet_id, sales.c.business_day))
        spend.update({(r[0], r[1]): int(r[2]) for r in rows})
    return spend

