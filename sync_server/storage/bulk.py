"""Bulk writes for the sale-apply hot path, still defined by the Core tables.

SQLAlchemy's executemany spends most of its time in generic per-row parameter handling; for a
1,000-sale batch that cost as much as SQLite's own work. A :class:`RowShape` compiles a
statement once per dialect and applies the columns' own bind processors (so UtcDateTime, JSON
and friends behave exactly as in ordinary Core statements), and the driver gets plain tuples.
Encoding is separate from executing so the sales push can encode what a sale's content decides
before it queues for the write lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import UpdateBase

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class RowShape:
    """One compiled statement and the bind processors of its parameters, in order."""

    sql: str
    names: tuple[str, ...]                  # the caller's order, which tuples follow
    processors: tuple[Processor, ...]       # in that order
    reorder: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None  # to the statement's order

    def encode(self, values: Sequence[Any]) -> tuple[Any, ...]:
        """Driver values for one row given in ``names`` order."""
        return tuple(v if p is None or v is None else p(v)
                     for v, p in zip(values, self.processors, strict=True))

    def encoder(self, name: str) -> Callable[[Any], Any]:
        """The processor of one parameter (identity if it has none), for values that repeat."""
        proc = self.processors[self.names.index(name)]
        return (lambda v: v) if proc is None else (lambda v: None if v is None else proc(v))

    def encoders(self, *names: str) -> tuple[Callable[[Any], Any], ...]:
        """Processors of ``names``, for a hot loop that builds whole rows itself and encodes
        only these (once per distinct value). Raises if any other parameter needs processing
        on this dialect, since such a loop would pass it to the driver unprocessed."""
        others = [n for n, p in zip(self.names, self.processors, strict=True)
                  if p is not None and n not in names]
        if others:
            raise RuntimeError(f"parameters {others} need bind processing on this dialect")
        return tuple(self.encoder(n) for n in names)

    async def execute(self, conn: AsyncConnection, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            reorder = self.reorder
            await conn.exec_driver_sql(self.sql, rows if reorder is None
                                       else [reorder(row) for row in rows])


@lru_cache(maxsize=64)
def insert_shape(table: sa.Table, columns: tuple[str, ...], dialect: sa.Dialect) -> RowShape:
    stmt = sa.insert(table).values({name: sa.bindparam(name) for name in columns})
    return _shape(stmt, columns, {name: table.c[name].type for name in columns}, dialect)


@lru_cache(maxsize=64)
def statement_shape(build: Callable[[], UpdateBase],
                    types: tuple[tuple[str, sa.types.TypeEngine[Any]], ...],
                    dialect: sa.Dialect) -> RowShape:
    """Any statement with named bindparams, given as a module-level builder (the cache key)
    and its parameters' names and types in the order the compiled statement binds them."""
    return _shape(build(), tuple(n for n, _ in types), dict(types), dialect)


def _shape(stmt: UpdateBase, names: tuple[str, ...],
           types: dict[str, sa.types.TypeEngine[Any]], dialect: sa.Dialect) -> RowShape:
    compiled = stmt.compile(dialect=dialect)
    order = tuple(compiled.positiontup or names)
    if sorted(order) != sorted(names):
        raise RuntimeError(f"statement binds {order}, caller gives {names}")
    # Tuples are built in the caller's order (an INSERT compiles in table column order).
    reorder = None if order == names else itemgetter(*(names.index(n) for n in order))
    return RowShape(compiled.string, names,
                    tuple(types[n]._cached_bind_processor(dialect) for n in names), reorder)


CHUNK = 900  # stays under every driver's bound-parameter limit


def chunks(values: Iterable[Any]) -> Iterator[list[Any]]:
    """Sorted, in lists small enough for one ``IN (...)`` on every driver."""
    items = sorted(values)
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]
