"""The report rollups recomputed from the ledger's rows, set-based, one school at a time.

Used where the rollups must be derived rather than trusted: migration 0011's backfill
(``INSERT ... SELECT`` of these) and ``audit-ledger`` (these compared with the stored rows).
They define the rollups (:mod:`sync_server.storage.schema_rollups`) exactly as
:mod:`.rollup_writes` maintains them:

- what sold: each applied sale's lines (JSON, expanded in the database) positive on its
  business day and the local hour of ``created_at``, a void's negative likewise, an admin
  reversal's (the reversed sale's lines) negative on the local day and hour it was recorded.
  Identical ``lines`` texts per (day, hour) are counted first and expanded once, as a
  cafeteria sells the same few baskets over and over.
- wallets: each wallet's received minus sent per local day of the postings' ``posted_at``
  (days with a net of 0 have no row).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..storage.schema import money_ops, postings, sales, schools, wallets
from ..storage.schema_rollups import sales_item_days, wallet_day_nets
from .local_time import local_day, local_hour
from .periods import Period, make

ITEM_COLUMNS = ("school_id", "business_day", "hour", "product_id", "name", "quantity",
                "amount")
NET_COLUMNS = ("wallet_id", "day", "school_id", "net")
# The days whose school-local midnights have UTC instants in every time zone.
EARLIEST, LATEST = date(1, 1, 2), date(9999, 12, 29)


async def span(conn: AsyncConnection, school_id: str) -> Period | None:
    """A period from the school's earliest to its latest stored moment (sales, reversals,
    postings), a day either side: the time zone offsets the CASEs of :mod:`.local_time` need."""
    tz = (await conn.execute(sa.select(schools.c.timezone)
                             .where(schools.c.school_id == school_id))).scalar_one()
    return covering(tz, [(await conn.execute(stmt)).one() for stmt in extents(school_id)])


def extents(school_id: str) -> list[sa.Select[Any]]:
    """(min, max) of each stored moment the rollups are local days and hours of."""
    return [sa.select(sa.func.min(column), sa.func.max(column)).where(mine)
            for column, mine in ((sales.c.created_at, sales.c.school_id == school_id),
                                 (money_ops.c.created_at, money_ops.c.school_id == school_id),
                                 (postings.c.posted_at, postings.c.school_id == school_id))]


def covering(timezone: str, extents: list[Any]) -> Period | None:
    moments = [v for row in extents for v in row if v is not None]
    if not moments:
        return None
    day = timedelta(days=1)
    # A day either side, kept inside the calendar: a till may send a sale stamped at its
    # first or last day, and a midnight there has no UTC instant in Python.
    first = max(min(moments).date(), EARLIEST + day) - day
    last = min(max(moments).date(), LATEST - day) + day
    return make("custom", first, last, timezone)


def item_days(school_id: str, period: Period, dialect: str) -> sa.Select[Any]:
    """Rows of ``sales_item_days`` for the school, in :data:`ITEM_COLUMNS` order."""
    s = sales.alias("s")
    sign = sa.case((s.c.kind == "void", -1), else_=1)
    hour = local_hour(s.c.created_at, period, dialect)
    text = sa.cast(s.c.lines, sa.Text)
    sold = (sa.select(text.label("lines"), s.c.business_day.label("day"), hour.label("hour"),
                      sa.func.sum(sign).label("n"))
            .where(s.c.school_id == school_id, s.c.status == "applied")
            .group_by(text, s.c.business_day, hour))
    r = sales.alias("r")
    day = local_day(money_ops.c.created_at, period, dialect)
    hour = local_hour(money_ops.c.created_at, period, dialect)
    text = sa.cast(r.c.lines, sa.Text)
    reversed_ = (
        sa.select(text.label("lines"), day.label("day"), hour.label("hour"),
                  (-sa.func.count()).label("n"))
        .select_from(r.join(money_ops, sa.and_(money_ops.c.school_id == r.c.school_id,
                                               money_ops.c.sale_ref == r.c.ref)))
        .where(money_ops.c.school_id == school_id, money_ops.c.kind == "reversal")
        .group_by(text, day, hour))
    g = sa.union_all(sold, reversed_).subquery("g")
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
    product = sa.func.coalesce(sa.cast(field("product_id"), sa.String), "")
    name = sa.func.coalesce(sa.cast(field("name"), sa.String), "")
    qty = g.c.n * sa.cast(field("quantity"), sa.BigInteger)
    return (sa.select(sa.literal(school_id, sa.String).label("school_id"),
                      g.c.day.label("business_day"), g.c.hour.label("hour"),
                      product.label("product_id"), name.label("name"),
                      sa.func.sum(qty).label("quantity"),
                      sa.func.sum(qty * sa.cast(field("unit_price"), sa.BigInteger))
                      .label("amount"))
            .select_from(g).join(elem, sa.true())
            .group_by(g.c.day, g.c.hour, product, name))


def wallet_nets(school_id: str, period: Period, dialect: str) -> sa.Select[Any]:
    """Rows of ``wallet_day_nets`` for the school, in :data:`NET_COLUMNS` order."""
    mine = postings.c.school_id == school_id
    moves = sa.union_all(
        sa.select(postings.c.to_account.label("account"), postings.c.amount.label("delta"),
                  postings.c.posted_at).where(mine),
        sa.select(postings.c.from_account.label("account"),
                  (-postings.c.amount).label("delta"), postings.c.posted_at).where(mine),
    ).subquery("m")
    day = local_day(moves.c.posted_at, period, dialect)
    net = sa.func.sum(moves.c.delta)
    return (sa.select(moves.c.account.label("wallet_id"), day.label("day"),
                      sa.literal(school_id, sa.String).label("school_id"), net.label("net"))
            .select_from(moves.join(wallets, sa.and_(wallets.c.wallet_id == moves.c.account,
                                                     wallets.c.school_id == school_id)))
            .group_by(moves.c.account, day).having(net != 0))


async def rebuild(conn: AsyncConnection, school_id: str) -> None:
    """Replace the school's rollup rows with ones derived from its ledger rows (in the
    caller's transaction): for a school whose time zone changed, whose local days and hours
    then move, or for data rewritten behind the ledger's back (tests)."""
    await conn.execute(sa.delete(sales_item_days).where(sales_item_days.c.school_id == school_id))
    await conn.execute(sa.delete(wallet_day_nets).where(wallet_day_nets.c.school_id == school_id))
    period = await span(conn, school_id)
    if period is None:
        return
    dialect = conn.dialect.name
    await conn.execute(sales_item_days.insert().from_select(
        ITEM_COLUMNS, item_days(school_id, period, dialect)))
    await conn.execute(wallet_day_nets.insert().from_select(
        NET_COLUMNS, wallet_nets(school_id, period, dialect)))
