"""``audit-ledger``'s check of the report rollups: each equals what it summarises.

Set-based: the rollup rows recomputed from the ledger's rows (:mod:`..reports.rollup_source`)
and the stored rows, side by side in one grouped pass, the keys found on one side only or
with other figures listed (a few of each). A row
the ledger's writes failed to add, added twice, or that someone edited shows in one list or
both; the reports built on the rollups would be wrong by exactly those rows.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..reports import rollup_source
from ..storage.schema_rollups import sales_item_days, wallet_day_nets

LIMIT = 20


async def check(conn: AsyncConnection, school_id: str) -> dict[str, list[dict[str, Any]]]:
    """``rollup_missing``: derived rows the rollups lack or hold with other figures (both
    given); ``rollup_extra``: stored rows nothing derives."""
    period = await rollup_source.span(conn, school_id)
    dialect = conn.dialect.name
    stored_items = sa.select(*(sales_item_days.c[n] for n in rollup_source.ITEM_COLUMNS)).where(
        sales_item_days.c.school_id == school_id)
    stored_nets = sa.select(*(wallet_day_nets.c[n] for n in rollup_source.NET_COLUMNS)).where(
        wallet_day_nets.c.school_id == school_id, wallet_day_nets.c.net != 0)
    missing: list[dict[str, Any]] = []
    extra: list[dict[str, Any]] = []
    for table, stored, derived, keys, figures in (
            ("sales_item_days", stored_items,
             None if period is None else rollup_source.item_days(school_id, period, dialect),
             rollup_source.ITEM_COLUMNS[:5], ("quantity", "amount")),
            ("wallet_day_nets", stored_nets,
             None if period is None else rollup_source.wallet_nets(school_id, period, dialect),
             rollup_source.NET_COLUMNS[:3], ("net",))):
        if derived is None:
            extra.extend({"table": table, **r._asdict()}
                         for r in await conn.execute(stored.limit(LIMIT)))
            continue
        if await _agree(conn, derived, stored, table, keys, figures):
            continue
        for r in await conn.execute(_differences(derived, stored, keys, figures)):
            # PostgreSQL's SUM of a bigint is numeric (a Decimal here): the report is JSON.
            row = {"table": table, **{k: _plain(getattr(r, k)) for k in keys}}
            fig = {f"{x}_{f}": int(getattr(r, f"{x}_{f}") or 0) for f in figures for x in "ds"}
            if not r.stored_n:
                missing.append({**row, **{f: fig[f"d_{f}"] for f in figures}})
            elif not r.derived_n:
                extra.append({**row, **{f: fig[f"s_{f}"] for f in figures}})
            else:
                missing.append({**row, **{f"derived_{f}": fig[f"d_{f}"] for f in figures},
                                **{f"stored_{f}": fig[f"s_{f}"] for f in figures}})
    return {"rollup_missing": missing, "rollup_extra": extra}


def _plain(value: Any) -> Any:
    """A key as JSON can print it: the union types the hour as a decimal on SQLite."""
    return int(value) if isinstance(value, Decimal) else value


async def _agree(conn: AsyncConnection, derived: sa.Select[Any], stored: sa.Select[Any],
                 table: str, keys: tuple[str, ...], figures: tuple[str, ...]) -> bool:
    """The usual case, cheaply: every derived row finds its stored twin by primary key with
    the same figures, and there are as many stored rows as derived ones (so none extra)."""
    d = derived.subquery("d")
    t = (sales_item_days if table == "sales_item_days" else wallet_day_nets).alias("t")
    twin = t.c[keys[1]]
    same = sa.and_(*(t.c[f] == d.c[f] for f in figures))
    n, bad = (await conn.execute(
        sa.select(sa.func.count(), sa.func.sum(sa.case((sa.and_(twin.is_not(None), same), 0),
                                                       else_=1)))
        .select_from(d.outerjoin(t, sa.and_(*(t.c[k] == d.c[k] for k in keys)))))).one()
    count = (await conn.execute(sa.select(sa.func.count()).select_from(
        stored.subquery()))).scalar_one()
    return not bad and int(n) == int(count)


def _differences(derived: sa.Select[Any], stored: sa.Select[Any], keys: tuple[str, ...],
                 figures: tuple[str, ...]) -> sa.Select[Any]:
    """One pass over both sides (the derived rows are the expensive part, computed once):
    the keys present on one side only, or with other figures."""
    d, s = derived.subquery("d"), stored.subquery("s")
    zero = sa.literal(0, sa.BigInteger)

    def side(q: Any, mine: str) -> sa.Select[Any]:
        cols = [q.c[k] for k in keys]
        for f in figures:
            cols += [(q.c[f] if mine == "d" else zero).label(f"d_{f}"),
                     (q.c[f] if mine == "s" else zero).label(f"s_{f}")]
        cols += [sa.literal(int(mine == "d"), sa.Integer).label("derived_n"),
                 sa.literal(int(mine == "s"), sa.Integer).label("stored_n")]
        return sa.select(*cols)

    both = sa.union_all(side(d, "d"), side(s, "s")).subquery("b")
    sums = [sa.func.sum(both.c[c]).label(c) for c in
            [*(f"{x}_{f}" for f in figures for x in "ds"), "derived_n", "stored_n"]]
    differs = sa.or_(sa.func.sum(both.c.derived_n) != sa.func.sum(both.c.stored_n),
                     *(sa.func.sum(both.c[f"d_{f}"]) != sa.func.sum(both.c[f"s_{f}"])
                       for f in figures))
    return (sa.select(*(both.c[k] for k in keys), *sums)
            .group_by(*(both.c[k] for k in keys)).having(differs).limit(LIMIT))
