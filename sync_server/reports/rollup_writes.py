"""Keeping the report rollups (:mod:`sync_server.storage.schema_rollups`) in step with the
ledger, in the ledger's own transactions.

Each write aggregates what one call changes per rollup key in Python and sends one
``INSERT .. ON CONFLICT DO UPDATE`` (add to what is there) per key, in sorted key order: two
PostgreSQL transactions upserting overlapping keys then lock them in the same order and
cannot deadlock. A push of a school already holds that school's row lock when it gets here
(``versions.bump``), so the shared (day, hour, product) rows add no waiting of their own.

Local days and hours are the school's, from ``schools.timezone`` read in the same
transaction (one primary-key look-up per call, or none when the caller read it already, as a
sales push does with its other settings): the same definition the reports used when they
computed them from the rows (:mod:`.local_time`, :mod:`.balances`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import UpdateBase

from ..storage.bulk import statement_shape
from ..storage.schema import Money, sales, schools
from ..storage.schema_rollups import sales_item_days, wallet_day_nets

ItemKey = tuple[str, str, int, str, str]  # school, business day, hour, product, name as sold


async def school_zone(conn: AsyncConnection, school_id: str) -> ZoneInfo:
    tz = (await conn.execute(sa.select(schools.c.timezone)
                             .where(schools.c.school_id == school_id))).scalar_one()
    return ZoneInfo(tz)


def add_lines(into: dict[ItemKey, list[int]], school_id: str, day: str, hour: int,
              lines: Iterable[Mapping[str, Any]], sign: int) -> None:
    """Add ``sign`` times each line's quantity and amount (quantity x unit price) to ``into``."""
    for line in lines:
        qty = sign * int(line.get("quantity") or 0)
        key = (school_id, day, hour, str(line.get("product_id") or ""),
               str(line.get("name") or ""))
        cell = into.get(key)
        if cell is None:
            cell = into[key] = [0, 0]
        cell[0] += qty
        cell[1] += qty * int(line.get("unit_price") or 0)


async def add_items(conn: AsyncConnection, items: Mapping[ItemKey, list[int]]) -> None:
    if not items:
        return
    build = _items_pg if conn.dialect.name == "postgresql" else _items_sqlite
    await statement_shape(build, _ITEM_TYPES, conn.dialect).execute(
        conn, [(*key, q, a) for key, (q, a) in sorted(items.items())])


async def sales_recorded(conn: AsyncConnection, school_id: str, recorded: Iterable[Any],
                         zone: ZoneInfo | None = None) -> None:
    """A push's applied sales and voids (``judge.NewSale``, a total of 0 included): lines
    positive on a sale's business day and local hour of ``created_at``, negative for a void.
    ``zone``: the school's, when the push has read it in this transaction."""
    items: dict[ItemKey, list[int]] = {}
    tz = zone
    for new in recorded:
        p = new.prepared
        if not p.lines:
            continue
        tz = tz or await school_zone(conn, school_id)
        created = p.stored_at or p.sale.created_at
        add_lines(items, school_id, p.day, created.astimezone(tz).hour, p.lines,
                  -1 if new.kind == "void" else 1)
    await add_items(conn, items)


async def sale_reversed(conn: AsyncConnection, school_id: str, sale_ref: str,
                        at: datetime) -> None:
    """An admin reversal recorded at ``at``: the reversed sale's lines negative on that local
    day and hour."""
    lines = (await conn.execute(sa.select(sales.c.lines).where(
        sales.c.school_id == school_id, sales.c.ref == sale_ref))).scalar_one_or_none()
    if not lines:
        return
    local = at.astimezone(await school_zone(conn, school_id))
    items: dict[ItemKey, list[int]] = {}
    add_lines(items, school_id, local.date().isoformat(), local.hour, lines, -1)
    await add_items(conn, items)


async def postings_written(conn: AsyncConnection, rows: list[tuple[Any, ...]],
                           wallet_ids: Iterable[str], zone: ZoneInfo | None = None) -> None:
    """Encoded postings rows (``postings.COLUMNS`` order) just inserted: each wallet's net per
    school-local day of ``posted_at``. ``wallet_ids``: which accounts are wallets. ``zone``:
    the time zone of the rows' one school, when the caller has read it in this transaction."""
    if not rows:
        return
    wallets = set(wallet_ids)
    nets: dict[tuple[str, str], int] = defaultdict(int)
    school: dict[str, str] = {}
    days: dict[Any, str] = {}
    zones: dict[str, ZoneInfo] = {}
    if zone is not None:
        zones = {row[1]: zone for row in rows}
        assert len(zones) == 1, "a zone is given for the rows of one school"
    for row in rows:
        school_id, source, target, amount, posted = row[1], row[3], row[4], row[5], row[8]
        if source not in wallets and target not in wallets:
            continue
        day = days.get((school_id, posted))
        if day is None:
            tz = zones.get(school_id)
            if tz is None:
                tz = zones[school_id] = await school_zone(conn, school_id)
            day = days[(school_id, posted)] = _moment(posted).astimezone(tz).date().isoformat()
        for wallet, delta in ((target, amount), (source, -amount)):
            if wallet in wallets:
                nets[(wallet, day)] += int(delta)
                school[wallet] = school_id
    changed = [(w, d, school[w], n) for (w, d), n in sorted(nets.items()) if n]
    if changed:
        build = _nets_pg if conn.dialect.name == "postgresql" else _nets_sqlite
        await statement_shape(build, _NET_TYPES, conn.dialect).execute(conn, changed)


def _moment(value: Any) -> datetime:
    """A posted_at as the driver was given it: an aware datetime (PostgreSQL), a naive UTC one
    or its text (SQLite)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


_ITEM_TYPES = (("school_id", sa.String()), ("business_day", sa.String()),
               ("hour", sa.SmallInteger()), ("product_id", sa.String()), ("name", sa.String()),
               ("quantity", sa.BigInteger()), ("amount", Money()))
_NET_TYPES = (("wallet_id", sa.String()), ("day", sa.String()), ("school_id", sa.String()),
              ("net", Money()))


def _upsert(insert: Any, table: sa.Table, types: tuple[tuple[str, Any], ...],
            keys: list[str], added: list[str]) -> UpdateBase:
    stmt = insert(table).values({n: sa.bindparam(n, type_=t) for n, t in types})
    return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=keys,
        set_={c: table.c[c] + getattr(stmt.excluded, c) for c in added})


def _items_pg() -> UpdateBase:
    return _upsert(postgresql.insert, sales_item_days, _ITEM_TYPES,
                   ["school_id", "business_day", "hour", "product_id", "name"],
                   ["quantity", "amount"])


def _items_sqlite() -> UpdateBase:
    return _upsert(sqlite.insert, sales_item_days, _ITEM_TYPES,
                   ["school_id", "business_day", "hour", "product_id", "name"],
                   ["quantity", "amount"])


def _nets_pg() -> UpdateBase:
    return _upsert(postgresql.insert, wallet_day_nets, _NET_TYPES, ["wallet_id", "day"],
                   ["net"])


def _nets_sqlite() -> UpdateBase:
    return _upsert(sqlite.insert, wallet_day_nets, _NET_TYPES, ["wallet_id", "day"], ["net"])
