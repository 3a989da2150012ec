"""What a terminal needs to sell offline: full snapshots and deltas, paged by cursor.

A cursor names a point in the school's change counter (see :mod:`ledger.versions`). A delta is
every mirrored row with ``version`` above the cursor, sent with its current status, so
deactivations and blocks arrive like any other change. Pages of a large snapshot are all read
below one high-water mark fixed by the first page; a row that changes meanwhile gets a version
above it and comes with the next delta, never lost between pages.

Each wallet carries ``spent_today`` (spec v1.1): what the ledger counts against its daily limit
on the school's current day, read in the same transaction as its balance by one grouped query
per page (:func:`ledger.spend.day_spend`). A sale bumps its wallet's version, so a delta always
brings a fresh figure for a wallet that spent.

v1.1 also sends each wallet's ``homeroom`` and active ``restrictions`` (one grouped query per
page, :func:`restrictions.active`; a restriction change bumps the wallet's version), and each
product's ``allergens`` and ``position``.

A pull is the most frequent request at lunch rush: every change of a school wakes each of its
tills, and they all pull the same delta from the same cursor at the same moment. So a delta
with nothing above the cursor is answered from the school row alone, and a small delta is kept
per server process (:class:`DeltaCache`) under the school version it was read below: rows at
or below a version never change without getting a higher one, so while the school row still
says that version, the kept rows are exactly what the database would answer.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from types import SimpleNamespace
from typing import Any, TypeGuard
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.clock import utcnow
from shared.protocol import SNAPSHOT_PAGE_ROWS, text_problem

from . import restrictions
from .ledger.spend import day_spend
from .storage.engine import statement_reads
from .storage.schema import (
    cashiers,
    credentials,
    products,
    schools,
    wallet_restrictions,
    wallets,
)

_KINDS: dict[str, tuple[sa.Table, sa.Column[Any]]] = {
    "wallets": (wallets, wallets.c.wallet_id),
    "credentials": (credentials, credentials.c.uid),
    "products": (products, products.c.product_id),
    "cashiers": (cashiers, cashiers.c.cashier_id),
}


@dataclass
class Cursor:
    epoch: str
    since: int                      # -1: a full snapshot
    high: int | None = None         # set while paging
    after: dict[str, tuple[int, str]] = field(default_factory=dict)

    def encode(self) -> str:
        data = {"e": self.epoch, "s": self.since, "h": self.high,
                "a": {k: list(v) for k, v in self.after.items()}}
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor | None:
        """None for anything that is not a cursor we issued: the caller sends everything.

        A cursor comes back from the client, so every part is checked for the shape ``encode``
        gives it before it reaches SQL: versions are integers within BIGINT (a float such as
        ``1e400`` or a 30-digit number would fail in the database), row keys are short text.
        """
        if len(text) > MAX_CURSOR_CHARS:
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        except (ValueError, RecursionError):  # not base64, not UTF-8, not JSON, too deep
            return None
        if not isinstance(data, dict) or not isinstance(data.get("e"), str):
            return None
        since, high, after = data.get("s"), data.get("h"), data.get("a", {})
        if not _version(since, lowest=-1) or not (high is None or _version(high)):
            return None
        if not isinstance(after, dict):
            return None
        keys: dict[str, tuple[int, str]] = {}
        for kind, point in after.items():
            if not (kind in _KINDS and isinstance(point, list) and len(point) == 2
                    and _version(point[0]) and isinstance(point[1], str)
                    and len(point[1]) <= 64 and not text_problem(point[1])):
                return None
            keys[kind] = (point[0], point[1])
        return cls(data["e"], since, high, keys)


MAX_CURSOR_CHARS = 4096  # a cursor we issue is a few hundred characters


def _version(value: object, lowest: int = 0) -> TypeGuard[int]:
    """An integer a version column can hold (JSON true is not one)."""
    return type(value) is int and lowest <= value < 2**63


# What a pull reads of its school row; the snapshot route reads it with the device token.
SCHOOL_COLUMNS = (schools.c.snapshot_epoch, schools.c.version, schools.c.timezone,
                  schools.c.currency, schools.c.offline_max_sale,
                  schools.c.offline_max_unsynced_total, schools.c.offline_max_hours,
                  schools.c.overdraft_limit)


async def build(engine: AsyncEngine, school_id: str, cursor_text: str | None,
                page_rows: int = SNAPSHOT_PAGE_ROWS) -> dict[str, Any]:
    """A snapshot page read the way the snapshot route reads one (statement_reads)."""
    async with statement_reads(engine) as conn, conn.begin():
        return await read(conn, school_id, cursor_text, page_rows)


async def read(conn: AsyncConnection, school_id: str, cursor_text: str | None,
               page_rows: int = SNAPSHOT_PAGE_ROWS, *, school: Any = None,
               cache: DeltaCache | None = None) -> dict[str, Any]:
    """:func:`build` on the caller's connection: the snapshot route checks the device token
    on the same one (one pooled connection per pull, not two; on PostgreSQL without a
    transaction, see ``storage.engine.statement_reads``). ``school``: the school row's
    ``SCHOOL_COLUMNS``, when the caller has read them with the token."""
    now = utcnow()
    stamp = now.isoformat(timespec="milliseconds")  # every balance is current as of it
    if school is None:
        school = (await conn.execute(
            sa.select(*SCHOOL_COLUMNS).where(schools.c.school_id == school_id))).one()
    cursor = Cursor.decode(cursor_text) if cursor_text else None
    if (cursor is None or cursor.epoch != school.snapshot_epoch
            or cursor.since > school.version
            or (cursor.high is not None and cursor.high > school.version)):
        cursor = Cursor(school.snapshot_epoch, -1)  # unknown or too old: full
    high = cursor.high if cursor.high is not None else int(school.version)
    today = now.astimezone(ZoneInfo(school.timezone)).date().isoformat()
    page: Page
    if cursor.since == high:
        # Nothing can lie above the cursor and at or below the school's version.
        page = ({kind: [] for kind in _KINDS}, False, {})
    elif cache is not None and cursor.since >= 0 and cursor.high is None and not cursor.after:
        # Only a cursor as this server hands out after a last page: one naming a page
        # position (even a forged one with no high-water mark) reads a subset of the rows,
        # which must never be kept as the answer for the plain cursor.
        key = (school_id, cursor.epoch, cursor.since, high, today, page_rows)
        page = await cache.get(
            key, lambda: _rows(conn, school_id, cursor, high, today, page_rows))
    else:
        page = await _rows(conn, school_id, cursor, high, today, page_rows)
    rows, more, next_after = page
    body = {kind: [dict(row, balance_as_of=stamp) for row in found] if kind == "wallets"
            else found for kind, found in rows.items()}
    if more:
        nxt = Cursor(cursor.epoch, cursor.since, high, next_after)
    else:
        nxt = Cursor(cursor.epoch, high)
    return {
        "cursor": nxt.encode(), "full": cursor.since < 0, "more": more,
        "server_time": stamp,
        "settings": {
            "currency": school.currency, "offline_max_sale": school.offline_max_sale,
            "offline_max_unsynced_total": school.offline_max_unsynced_total,
            "offline_max_hours": school.offline_max_hours,
            "overdraft_limit": school.overdraft_limit, "timezone": school.timezone,
        },
        **body,
    }


Rows = dict[str, list[dict[str, Any]]]
Page = tuple[Rows, bool, dict[str, tuple[int, str]]]


# What each kind sends, besides ``version`` (the row functions at the end read these).
_SENT = {
    "wallets": ("wallet_id", "display_name", "balance", "daily_limit", "status", "grade",
                "homeroom"),
    "credentials": ("uid", "wallet_id", "status"),
    "products": ("product_id", "name", "price", "category", "active", "allergens", "position"),
    "cashiers": ("cashier_id", "name", "pin_hash", "active"),
}


def _page_query(kind: str, school_id: Any, since: Any, high: Any, page_rows: Any,
                after: tuple[Any, Any] | None, *extra: sa.ColumnElement[Any]) -> sa.Select[Any]:
    """One kind's page; the values may be bound parameters (``_in_one_statement``)."""
    table, key = _KINDS[kind]
    query = (sa.select(*(table.c[name] for name in _SENT[kind]), table.c.version, *extra)
             .where(table.c.school_id == school_id, table.c.version > since,
                    table.c.version <= high)
             .order_by(table.c.version, key).limit(page_rows))
    if after is not None:
        query = query.where(sa.tuple_(table.c.version, key) > sa.tuple_(*after))
    return query


async def _pages_one_by_one(conn: AsyncConnection, school_id: str, cursor: Cursor, high: int,
                            page_rows: int) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """Each kind's page in a statement of its own, then the page's wallets' restrictions."""
    pages = {kind: list((await conn.execute(_page_query(
        kind, school_id, cursor.since, high, page_rows, cursor.after.get(kind)))).all())
        for kind in _KINDS}
    ids = [r.wallet_id for r in pages["wallets"]]
    return pages, (await restrictions.active(conn, school_id, ids) if ids else {})


async def _pages_in_one(conn: AsyncConnection, school_id: str, cursor: Cursor, high: int,
                        page_rows: int) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """The same in one statement, for PostgreSQL, where each statement is a round trip to
    another process: a pull that misses the delta cache read its four kinds and the
    restrictions in five (issue 14: round trips were most of what a pull cost at 500 tills).
    Each kind's page is one arm of a UNION ALL, its rows as JSON with their place in the
    page's order (so the page is the database's order, collation included, as the paging
    keys compare it), and each wallet carries its active restrictions."""
    values: dict[str, Any] = {"school_id": school_id, "since": cursor.since, "high": high,
                              "page_rows": page_rows}
    for kind, (version, key) in cursor.after.items():
        values[f"{kind}_after_version"], values[f"{kind}_after_key"] = version, key
    result = await conn.execute(_in_one_statement(frozenset(cursor.after)), values)
    found: dict[str, list[dict[str, Any]]] = {kind: [] for kind in _KINDS}
    for r in result:
        found[r.kind].append(r.row)
    pages: dict[str, list[Any]] = {}
    blocked: dict[str, Any] = {}
    for kind, rows in found.items():
        rows.sort(key=lambda row: int(row["place"]))
        pages[kind] = [SimpleNamespace(**row) for row in rows]
    for r in pages["wallets"]:
        if r.active_restrictions:
            lists = blocked[r.wallet_id] = restrictions.empty()
            for what, value in r.active_restrictions:
                lists[restrictions.SNAPSHOT_KEYS[what]].append(value)
    return pages, blocked


@lru_cache(maxsize=16)  # 2 ** len(_KINDS): any subset of the kinds may be paged
def _in_one_statement(paged: frozenset[str]) -> sa.CompoundSelect[Any]:
    """``_pages_in_one``'s statement, built once per process for each set of kinds the cursor
    names a page position of, with its values as parameters: building a statement is a good
    part of SQLAlchemy's work per statement, and a built one leaves reference cycles for the
    garbage collector, whose pauses are what the slowest answers at rush wait for."""
    active = (sa.select(sa.func.json_agg(aggregate_order_by(
        sa.func.json_build_array(wallet_restrictions.c.kind, wallet_restrictions.c.value),
        wallet_restrictions.c.kind, wallet_restrictions.c.value)))
        .where(wallet_restrictions.c.school_id == wallets.c.school_id,
               wallet_restrictions.c.wallet_id == wallets.c.wallet_id,
               wallet_restrictions.c.until.is_(None))
        .scalar_subquery().label("active_restrictions"))
    school_id: sa.BindParameter[str] = sa.bindparam("school_id", type_=sa.String)
    since: sa.BindParameter[int] = sa.bindparam("since", type_=sa.BigInteger)
    high: sa.BindParameter[int] = sa.bindparam("high", type_=sa.BigInteger)
    page_rows: sa.BindParameter[int] = sa.bindparam("page_rows", type_=sa.Integer)
    arms = []
    for kind, (table, key) in _KINDS.items():
        after = ((sa.bindparam(f"{kind}_after_version", type_=sa.BigInteger),
                  sa.bindparam(f"{kind}_after_key", type_=sa.String))
                 if kind in paged else None)
        extra = [active] if kind == "wallets" else []
        place = sa.func.row_number().over(order_by=(table.c.version, key)).label("place")
        arm = _page_query(kind, school_id, since, high, page_rows, after, *extra,
                          place).subquery(f"page_{kind}")
        row = sa.func.to_json(sa.literal_column(arm.name), type_=sa.JSON).label("row")
        arms.append(sa.select(sa.literal_column(f"'{kind}'").label("kind"), row)
                    .select_from(arm))
    return sa.union_all(*arms)


async def _rows(conn: AsyncConnection, school_id: str, cursor: Cursor, high: int, today: str,
                page_rows: int) -> Page:
    """The mirrored rows above the cursor and at or below ``high``, each kind a page; wallets
    without ``balance_as_of`` (stamped by the caller, also on a kept delta)."""
    body: Rows = {}
    more = False
    next_after: dict[str, tuple[int, str]] = {}
    read = _pages_in_one if conn.dialect.name == "postgresql" else _pages_one_by_one
    pages, blocked = await read(conn, school_id, cursor, high, page_rows)
    for kind, (_table, key) in _KINDS.items():
        rows = pages[kind]
        if kind == "wallets":
            spent = await _spent_today(conn, school_id, rows, today)
            body[kind] = [_wallet(r, spent.get((r.wallet_id, today), 0),
                                  blocked.get(r.wallet_id))
                          for r in rows]
        else:
            body[kind] = [_ROW[kind](r) for r in rows]
        if len(rows) == page_rows:
            more = True
        if rows:
            last = rows[-1]
            next_after[kind] = (int(last.version), str(getattr(last, key.name)))
        elif kind in cursor.after:
            next_after[kind] = cursor.after[kind]
    return body, more, next_after


class DeltaCache:
    """Small deltas of this process's recent pulls, by (school, cursor, version, day), and the
    reads in flight: a school's tills wake on the same event and pull the same delta at once,
    so the first reads it and the others wait for its answer instead of reading it again.

    Only deltas are kept (a full snapshot is a new till's, rare and large), at most
    ``max_rows`` rows each, ``entries`` of them, least recently used out first. A waiter's own
    transaction has already read the same school version, so the rows it is given are the ones
    it would have read; if the read it waits for fails, it reads for itself.

    ``count`` is told where each answer came from (``read``, ``kept``, ``joined``): /metrics
    shows a fleet's hit rate with it."""

    def __init__(self, entries: int = 512, max_rows: int = 200,
                 count: Callable[[str], None] = lambda source: None) -> None:
        self.entries = entries
        self.max_rows = max_rows
        self.count = count
        self._kept: OrderedDict[tuple[Any, ...], Page] = OrderedDict()
        self._reading: dict[tuple[Any, ...], asyncio.Future[Page]] = {}
        self.hits = 0
        self.reads = 0

    async def get(self, key: tuple[Any, ...],
                  read: Callable[[], Awaitable[Page]]) -> Page:
        kept = self._kept.get(key)
        if kept is not None:
            self._kept.move_to_end(key)
            self.hits += 1
            self.count("kept")
            return kept
        pending = self._reading.get(key)
        if pending is not None:
            try:
                found = await asyncio.shield(pending)
            except Exception:  # the reader's failure is its own; read for ourselves
                return await read()
            self.hits += 1
            self.count("joined")
            return found
        future: asyncio.Future[Page] = asyncio.get_running_loop().create_future()
        self._reading[key] = future
        try:
            found = await read()
        except BaseException as exc:
            future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
            future.exception()  # retrieved: nobody may be waiting
            raise
        finally:
            del self._reading[key]
        self.reads += 1
        self.count("read")
        future.set_result(found)
        if sum(len(v) for v in found[0].values()) <= self.max_rows:
            self._kept[key] = found
            if len(self._kept) > self.entries:
                self._kept.popitem(last=False)
        return found


async def _spent_today(conn: AsyncConnection, school_id: str, rows: Sequence[Any],
                       today: str) -> dict[tuple[str, str], int]:
    """One grouped query for the page's wallets that have a daily limit (the others send 0)."""
    keys = {(r.wallet_id, today) for r in rows if r.daily_limit is not None}
    return await day_spend(conn, school_id, keys) if keys else {}


def _wallet(r: Any, spent_today: int,
            blocked: dict[str, list[str]] | None) -> dict[str, Any]:
    return {"wallet_id": r.wallet_id, "display_name": r.display_name, "balance": r.balance,
            "daily_limit": r.daily_limit, "status": r.status,
            "spent_today": spent_today, "grade": r.grade, "homeroom": r.homeroom,
            "restrictions": blocked or restrictions.empty()}


def _credential(r: Any) -> dict[str, Any]:
    return {"uid": r.uid, "wallet_id": r.wallet_id, "status": r.status}


def _product(r: Any) -> dict[str, Any]:
    return {"product_id": r.product_id, "name": r.name, "price": r.price,
            "category": r.category, "active": r.active,
            "allergens": list(r.allergens or []), "position": r.position}


def _cashier(r: Any) -> dict[str, Any]:
    return {"cashier_id": r.cashier_id, "name": r.name, "pin_hash": r.pin_hash,
            "active": r.active}


_ROW = {"credentials": _credential, "products": _product, "cashiers": _cashier}
