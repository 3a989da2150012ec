"""Bulk INSERT for the sale-apply hot path, still defined by the Core tables.

SQLAlchemy's executemany spends most of its time in generic per-row parameter handling; for a
1,000-sale batch that cost as much as SQLite's own work. This compiles each INSERT once per
dialect and applies the columns' own bind processors (so UtcDateTime, JSON and friends behave
exactly as in ordinary Core statements) before handing plain tuples to the driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection


@lru_cache(maxsize=64)
def _compiled(table: sa.Table, columns: tuple[str, ...],
              dialect: sa.Dialect) -> tuple[str, list[Any]]:
    stmt = sa.insert(table).values({name: sa.bindparam(name) for name in columns})
    compiled = stmt.compile(dialect=dialect)
    order = compiled.positiontup or list(columns)
    processors = [table.c[name].type._cached_bind_processor(dialect) for name in order]
    if list(order) != list(columns):  # keep the caller's order for the tuples we build
        raise RuntimeError(f"unexpected parameter order for {table.name}: {order}")
    return compiled.string, processors


async def bulk_insert(conn: AsyncConnection, table: sa.Table,
                      rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) in one driver executemany."""
    if not rows:
        return
    columns = tuple(rows[0])
    sql, processors = _compiled(table, columns, conn.dialect)
    take = itemgetter(*columns)
    # Rows of one batch share many values (every row's received_at, a sale's created_at on its
    # sale and posting rows): process each distinct hashable value once. Columns without a
    # bind processor are taken as they are, in C, by ``itemgetter``.
    fix: list[tuple[int, Any, dict[Any, Any]]] = [
        (i, proc, {}) for i, proc in enumerate(processors) if proc is not None]
    params = []
    for row in rows:
        values = list(take(row)) if len(columns) > 1 else [take(row)]
        for i, proc, memo in fix:
            value = values[i]
            if value is None:
                continue
            try:
                cached = memo.get(value, _MISSING)
            except TypeError:  # unhashable (JSON lists): process every time
                values[i] = proc(value)
                continue
            if cached is _MISSING:
                cached = memo[value] = proc(value)
            values[i] = cached
        params.append(tuple(values))
    await conn.exec_driver_sql(sql, params)


_MISSING = object()
