"""What sold: quantities and amounts per product or category, per day or hour of the day.

A sale's lines are JSON in ``sales.lines``; they are expanded in the database
(``json_array_elements`` on PostgreSQL, ``json_each`` on SQLite) and grouped there, so the
result has one row per (item, day or hour), whatever the number of sales.

Signs make the figures net, like the Z report: a sale's lines count positive on its school
day, a void's lines (a void repeats the lines of the sale it voids) negative on the void's
day, and an admin reversal's lines (the reversed sale's) negative on the school day it was
recorded. Amounts are quantity times the unit price the till charged; a sale whose total does
not add up to its lines is flagged for review and only its lines count here.

Hours are the school's local hour of the day over the whole period (when in the day does the
cafeteria sell), computed in SQL (:mod:`.local_time`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..storage.schema import money_ops, products, sales
from .local_time import local_day, local_hour
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
    """Signed line rows (sales and voids by business day, reversals by the day recorded),
    grouped by item and time."""
    lines = _lines(school_id, period, per, dialect).subquery("l")
    p = products.alias("p")
    category = sa.func.coalesce(p.c.category, "")
    if by == "product":
        group: Any = lines.c.product_id
        name: Any = sa.func.coalesce(sa.func.max(p.c.name), sa.func.max(lines.c.name))
        cat: Any = sa.func.max(category)
    else:
        group = name = cat = category
    return (
        sa.select(group.label("key"), name.label("name"), cat.label("category"),
                  lines.c.slot, sa.func.sum(lines.c.quantity).label("quantity"),
                  sa.func.sum(lines.c.quantity * lines.c.unit_price).label("amount"))
        .select_from(lines.outerjoin(p, sa.and_(p.c.school_id == school_id,
                                                p.c.product_id == lines.c.product_id)))
        .group_by(group, lines.c.slot))


def _lines(school_id: str, period: Period, per: Per, dialect: str) -> sa.Select[Any]:
    """One row per line of each distinct (lines, time) group: a cafeteria sells the same
    few baskets over and over, so the sales are first counted per identical ``lines`` text
    and time (sales +1, voids -1, reversals -1 each), and only those groups' JSON is expanded,
    its quantities multiplied by the group's signed count."""
    s = sales.alias("s")
    sign = sa.case((s.c.kind == "void", -1), else_=1)
    slot = s.c.business_day if per == "day" else local_hour(s.c.created_at, period, dialect)
    text = sa.cast(s.c.lines, sa.Text)
    sold = (sa.select(text.label("lines"), slot.label("slot"), sa.func.sum(sign).label("n"))
            .where(s.c.school_id == school_id, s.c.status == "applied",
                   s.c.business_day >= period.first_day, s.c.business_day <= period.last_day)
            .group_by(text, slot))
    r = sales.alias("r")
    when = (local_day(money_ops.c.created_at, period, dialect) if per == "day"
            else local_hour(money_ops.c.created_at, period, dialect))
    text = sa.cast(r.c.lines, sa.Text)
    reversed_ = (
        sa.select(text.label("lines"), when.label("slot"), (-sa.func.count()).label("n"))
        .select_from(r.join(money_ops, sa.and_(money_ops.c.school_id == r.c.school_id,
                                               money_ops.c.sale_ref == r.c.ref)))
        .where(money_ops.c.school_id == school_id, money_ops.c.kind == "reversal",
               money_ops.c.created_at >= period.start, money_ops.c.created_at < period.end)
        .group_by(text, when))
    return _expand(sa.union_all(sold, reversed_).subquery("g"), dialect)


def _expand(g: Any, dialect: str) -> sa.Select[Any]:
    """One row per line of each group of ``g``: product, name, signed quantity, unit price."""
    if dialect == "postgresql":
        elem = sa.func.json_array_elements(sa.cast(g.c.lines, sa.JSON)).table_valued(
            "value", joins_implicitly=True).alias("e")

        def field(name: str) -> Any:
            return elem.c.value.op("->>")(name)
    else:
        elem = sa.func.json_each(g.c.lines).table_valued(
            "value", joins_implicitly=True).alias("e")

        def field(name: str) -> Any:
            return sa.func.json_extract(elem.c.value, f"$.{name}")
    return (sa.select(sa.cast(field("product_id"), sa.String).label("product_id"),
                      sa.cast(field("name"), sa.String).label("name"),
                      (g.c.n * sa.cast(field("quantity"), sa.BigInteger)).label("quantity"),
                      sa.cast(field("unit_price"), sa.BigInteger).label("unit_price"),
                      g.c.slot)
            .select_from(g).join(elem, sa.true()))
