"""What sold: quantities and amounts per product or category, per day or hour of the day.

Read from the ``sales_item_days`` rollup, which the ledger keeps per (school day, local hour,
product, name as sold) in the transactions that record sales, voids and reversals
(:mod:`.rollup_writes`; recomputed from the sales' JSON lines by :mod:`.rollup_source`, which
``audit-ledger`` compares it with). A year's breakdown sums a few hundred thousand rollup rows
at most instead of expanding a million sales' lines.

Signs make the figures net, like the Z report: a sale's lines count positive on its school
day, a void's lines (a void repeats the lines of the sale it voids) negative on the void's
day, and an admin reversal's lines (the reversed sale's) negative on the school day it was
recorded. Amounts are quantity times the unit price the till charged; a sale whose total does
not add up to its lines is flagged for review and only its lines count here.

Hours are the school's local hour of the day over the whole period (when in the day does the
cafeteria sell), the hour of the sale's ``created_at`` (of a reversal's recording).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..storage.schema import products
from ..storage.schema_rollups import sales_item_days
from .periods import Period

By = Literal["product", "category"]
Per = Literal["day", "hour"]
BY: tuple[By, ...] = ("product", "category")
PER: tuple[Per, ...] = ("day", "hour")


@dataclass(frozen=True, slots=True)
class Item:
    """One product or category over the whole period."""

    key: str          # product_id, or the category's name
    name: str         # the product's catalog name (as sold, if gone), or the category
    category: str
    quantity: int
    amount: int


@dataclass(frozen=True, slots=True)
class Cell:
    """One item in one day (``YYYY-MM-DD``) or hour (``00``..``23``)."""

    key: str
    when: str
    quantity: int
    amount: int


@dataclass(frozen=True, slots=True)
class Breakdown:
    by: By
    per: Per
    period: Period
    items: tuple[Item, ...]           # largest amount first
    cells: tuple[Cell, ...]           # by item, then time
    series: tuple[tuple[str, int], ...]  # every day of the period (or hour 00-23) and amount
    quantity: int
    amount: int


async def breakdown(conn: AsyncConnection, school_id: str, period: Period, *,
                    by: By = "product", per: Per = "day") -> Breakdown:
    dialect = conn.dialect.name
    grouped = (await conn.execute(_statement(school_id, period, by, per, dialect))).all()
    items: dict[str, list[Any]] = {}
    series: dict[str, int] = defaultdict(int)
    cells = []
    for r in grouped:
        when = r.slot if per == "day" else f"{int(r.slot):02d}"
        qty, amount = int(r.quantity), int(r.amount)
        cells.append(Cell(r.key, when, qty, amount))
        series[when] += amount
        item = items.setdefault(r.key, [r.name or r.key, r.category or "", 0, 0])
        item[2] += qty
        item[3] += amount
    rows = tuple(sorted((Item(k, v[0], v[1], v[2], v[3]) for k, v in items.items()),
                        key=lambda i: (-i.amount, i.name.lower(), i.key)))
    order = {item.key: n for n, item in enumerate(rows)}
    whens = ([d.isoformat() for d in period.each_day()] if per == "day"
             else [f"{h:02d}" for h in range(24)])
    return Breakdown(
        by, per, period, rows, tuple(sorted(cells, key=lambda c: (order[c.key], c.when))),
        tuple((w, series.get(w, 0)) for w in whens),
        sum(i.quantity for i in rows), sum(i.amount for i in rows))


def _statement(school_id: str, period: Period, by: By, per: Per,
               dialect: str) -> sa.Select[Any]:
    """The rollup's rows of the period (sales and voids by business day, reversals by the day
    recorded, all under ``business_day``), grouped by item and time."""
    r = sales_item_days
    p = products.alias("p")
    category = sa.func.coalesce(p.c.category, "")
    slot: Any = r.c.business_day if per == "day" else r.c.hour
    if by == "product":
        group: Any = r.c.product_id
        name: Any = sa.func.coalesce(sa.func.max(p.c.name),
                                     sa.func.max(sa.func.nullif(r.c.name, "")))
        cat: Any = sa.func.max(category)
    else:
        group = name = cat = category
    return (
        sa.select(group.label("key"), name.label("name"), cat.label("category"),
                  slot.label("slot"), sa.func.sum(r.c.quantity).label("quantity"),
                  sa.func.sum(r.c.amount).label("amount"))
        .select_from(r.outerjoin(p, sa.and_(p.c.school_id == school_id,
                                            p.c.product_id == r.c.product_id)))
        .where(r.c.school_id == school_id, r.c.business_day >= period.first_day,
               r.c.business_day <= period.last_day)
        .group_by(group, slot))
