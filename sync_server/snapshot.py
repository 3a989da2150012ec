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
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.clock import utcnow
from shared.protocol import SNAPSHOT_PAGE_ROWS, text_problem

from . import restrictions
from .ledger.spend import day_spend
from .storage.schema import cashiers, credentials, products, schools, wallets

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


async def build(engine: AsyncEngine, school_id: str, cursor_text: str | None,
                page_rows: int = SNAPSHOT_PAGE_ROWS) -> dict[str, Any]:
    async with engine.connect() as conn:
        conn = await conn.execution_options(readonly=True)
        async with conn.begin():
            return await read(conn, school_id, cursor_text, page_rows)


async def read(conn: AsyncConnection, school_id: str, cursor_text: str | None,
               page_rows: int = SNAPSHOT_PAGE_ROWS) -> dict[str, Any]:
    """:func:`build` inside the caller's read-only transaction: the snapshot route checks the
    device token in the same one, one pooled connection per pull instead of two."""
    now = utcnow()
    stamp = now.isoformat(timespec="milliseconds")  # every balance is current as of it
    school = (await conn.execute(
        sa.select(schools).where(schools.c.school_id == school_id))).one()
    cursor = Cursor.decode(cursor_text) if cursor_text else None
    if (cursor is None or cursor.epoch != school.snapshot_epoch
            or cursor.since > school.version
            or (cursor.high is not None and cursor.high > school.version)):
        cursor = Cursor(school.snapshot_epoch, -1)  # unknown or too old: full
    high = cursor.high if cursor.high is not None else int(school.version)
    body: dict[str, Any] = {}
    more = False
    next_after: dict[str, tuple[int, str]] = {}
    for kind, (table, key) in _KINDS.items():
        query = (sa.select(table).where(table.c.school_id == school_id,
                                        table.c.version > cursor.since,
                                        table.c.version <= high)
                 .order_by(table.c.version, key).limit(page_rows))
        if kind in cursor.after:
            query = query.where(sa.tuple_(table.c.version, key) > cursor.after[kind])
        rows = (await conn.execute(query)).all()
        if kind == "wallets":
            today = now.astimezone(ZoneInfo(school.timezone)).date().isoformat()
            spent = await _spent_today(conn, school_id, rows, today)
            blocked = (await restrictions.active(
                conn, school_id, [r.wallet_id for r in rows]) if rows else {})
            body[kind] = [_wallet(r, stamp, spent.get((r.wallet_id, today), 0),
                                  blocked.get(r.wallet_id))
                          for r in rows]
        else:
            body[kind] = [_ROW[kind](r, stamp) for r in rows]
        if len(rows) == page_rows:
            more = True
        if rows:
            last = rows[-1]
            next_after[kind] = (int(last.version), str(getattr(last, key.name)))
        elif kind in cursor.after:
            next_after[kind] = cursor.after[kind]
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


async def _spent_today(conn: AsyncConnection, school_id: str, rows: Sequence[Any],
                       today: str) -> dict[tuple[str, str], int]:
    """One grouped query for the page's wallets that have a daily limit (the others send 0)."""
    keys = {(r.wallet_id, today) for r in rows if r.daily_limit is not None}
    return await day_spend(conn, school_id, keys) if keys else {}


def _wallet(r: Any, now: str, spent_today: int,
            blocked: dict[str, list[str]] | None) -> dict[str, Any]:
    return {"wallet_id": r.wallet_id, "display_name": r.display_name, "balance": r.balance,
            "daily_limit": r.daily_limit, "status": r.status, "balance_as_of": now,
            "spent_today": spent_today, "grade": r.grade, "homeroom": r.homeroom,
            "restrictions": blocked or restrictions.empty()}


def _credential(r: Any, _now: str) -> dict[str, Any]:
    return {"uid": r.uid, "wallet_id": r.wallet_id, "status": r.status}


def _product(r: Any, _now: str) -> dict[str, Any]:
    return {"product_id": r.product_id, "name": r.name, "price": r.price,
            "category": r.category, "active": r.active,
            "allergens": list(r.allergens or []), "position": r.position}


def _cashier(r: Any, _now: str) -> dict[str, Any]:
    return {"cashier_id": r.cashier_id, "name": r.name, "pin_hash": r.pin_hash,
            "active": r.active}


_ROW = {"credentials": _credential, "products": _product, "cashiers": _cashier}
