"""``audit-ledger``'s check of the report rollups: each equals what it summarises.

Set-based: the rollup rows recomputed from the ledger's rows (:mod:`..reports.rollup_source`)
``EXCEPT`` the stored rows, and the other way round, a few of each difference listed. A row
the ledger's writes failed to add, added twice, or that someone edited shows in one list or
both; the reports built on the rollups would be wrong by exactly those rows.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..reports import rollup_source
from ..storage.schema_rollups import sales_item_days, wallet_day_nets

LIMIT = 20


async def check(conn: AsyncConnection, school_id: str) -> dict[str, list[dict[str, Any]]]:
    """``rollup_missing``: derived rows the rollups lack (or hold with other figures);
    ``rollup_extra``: stored rows nothing derives."""
    period = await rollup_source.span(conn, school_id)
    dialect = conn.dialect.name
    stored_items = sa.select(*(sales_item_days.c[n] for n in rollup_source.ITEM_COLUMNS)).where(
        sales_item_days.c.school_id == school_id)
    stored_nets = sa.select(*(wallet_day_nets.c[n] for n in rollup_source.NET_COLUMNS)).where(
        wallet_day_nets.c.school_id == school_id, wallet_day_nets.c.net != 0)
    missing: list[dict[str, Any]] = []
    extra: list[dict[str, Any]] = []
    for table, stored, derived in (
            ("sales_item_days", stored_items,
             None if period is None else rollup_source.item_days(school_id, period, dialect)),
            ("wallet_day_nets", stored_nets,
             None if period is None else rollup_source.wallet_nets(school_id, period, dialect))):
        if derived is None:
            extra.extend({"table": table, **r._asdict()}
                         for r in await conn.execute(stored.limit(LIMIT)))
            continue
        for into, first, second in ((missing, derived, stored), (extra, stored, derived)):
            diff = sa.except_(first, second).subquery("d")
            into.extend({"table": table, **r._asdict()}
                        for r in await conn.execute(sa.select(diff).limit(LIMIT)))
    return {"rollup_missing": missing, "rollup_extra": extra}
