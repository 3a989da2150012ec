"""What judging a push looks up under its locks besides the wallets: bracelets, cashiers,
restrictions and prices, in one statement on PostgreSQL.

On PostgreSQL every statement is a round trip to another process, and a push holds its device
and wallet locks across all of them: at 500 tills those round trips were most of a push's time
(issue 14, docs/server.md). The four lookups do not depend on each other, so they are the arms
of one UNION ALL there, each row a JSON array; times travel as the database's ISO text, so
they come back as the same instants, to the microsecond. SQLite has no round trips and keeps
one plain statement per lookup, which is also the reference the PostgreSQL form is tested
against (tests/server/test_push_statements.py). A batch naming more values of a kind than one
``IN (...)`` takes (``storage.bulk.CHUNK``) reads the plain way too, in chunks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .. import restrictions
from ..restrictions import Span
from ..storage.bulk import CHUNK, chunks
from ..storage.schema import (
    cashiers,
    credentials,
    product_prices,
    products,
    wallet_restrictions,
)
from .judge import CredentialState


@dataclass(slots=True)
class Lookups:
    credentials: dict[str, CredentialState]          # by UID, this school's
    cashiers: set[str]                               # the IDs that are this school's
    spans: dict[str, list[Span]]                     # by wallet, every restriction it had
    prices: dict[str, list[tuple[float, int]]]       # by product, (valid_from, price) ascending


async def read(conn: AsyncConnection, school_id: str, *, uids: Iterable[str],
               cashier_ids: Iterable[str], wallet_ids: Iterable[str],
               product_ids: Iterable[str]) -> Lookups:
    wanted = [set(uids), set(cashier_ids), set(wallet_ids), set(product_ids)]
    if conn.dialect.name == "postgresql" and all(len(values) <= CHUNK for values in wanted):
        return await read_in_one(conn, school_id, *wanted)
    return await read_one_by_one(conn, school_id, *wanted)


async def read_one_by_one(conn: AsyncConnection, school_id: str, uids: set[str],
                          cashier_ids: set[str], wallet_ids: set[str],
                          product_ids: set[str]) -> Lookups:
    creds: dict[str, CredentialState] = {}
    for chunk in chunks(uids):
        rows = await conn.execute(
            sa.select(credentials.c.uid, credentials.c.wallet_id, credentials.c.status,
                      credentials.c.blocked_at)
            .where(credentials.c.school_id == school_id, credentials.c.uid.in_(chunk)))
        creds.update({r.uid: CredentialState(r.wallet_id, r.status, r.blocked_at) for r in rows})
    known: set[str] = set()
    for chunk in chunks(cashier_ids):
        known.update(r.cashier_id for r in await conn.execute(
            sa.select(cashiers.c.cashier_id)
            .where(cashiers.c.cashier_id.in_(chunk), cashiers.c.school_id == school_id)))
    # A product with no price history cannot be judged: it is left out, as unknown.
    prices: dict[str, list[tuple[float, int]]] = {}
    for chunk in chunks(product_ids):
        rows = await conn.execute(_prices(school_id, chunk)
                                  .order_by(product_prices.c.product_id,
                                            product_prices.c.valid_from))
        for r in rows:
            prices.setdefault(r.product_id, []).append((r.valid_from.timestamp(), int(r.price)))
    return Lookups(creds, known, await restrictions.spans(conn, school_id, wallet_ids), prices)


def _prices(school_id: str, product_ids: list[str]) -> sa.Select[Any]:
    return (sa.select(product_prices.c.product_id, product_prices.c.valid_from,
                      product_prices.c.price)
            .join(products, products.c.product_id == product_prices.c.product_id)
            .where(products.c.school_id == school_id, products.c.product_id.in_(product_ids)))


async def read_in_one(conn: AsyncConnection, school_id: str, uids: set[str],
                      cashier_ids: set[str], wallet_ids: set[str],
                      product_ids: set[str]) -> Lookups:
    statement = _in_one_statement()
    rows = await conn.execute(statement, {
        "school_id": school_id, "uids": sorted(uids), "cashier_ids": sorted(cashier_ids),
        "wallet_ids": sorted(wallet_ids), "product_ids": sorted(product_ids)})
    found = Lookups({}, set(), {}, {})
    for kind, row in rows:
        if kind == "credential":
            uid, wallet_id, status, blocked_at = row
            found.credentials[uid] = CredentialState(wallet_id, status, _instant(blocked_at))
        elif kind == "cashier":
            found.cashiers.add(row[0])
        elif kind == "restriction":
            wallet_id, what, value, since, until = row
            until_at = _instant(until)
            found.spans.setdefault(wallet_id, []).append(Span(
                what, value, datetime.fromisoformat(since).timestamp(),
                until_at.timestamp() if until_at is not None else None))
        else:
            product_id, valid_from, price = row
            found.prices.setdefault(product_id, []).append(
                (datetime.fromisoformat(valid_from).timestamp(), int(price)))
    for history in found.prices.values():
        history.sort()
    return found


@lru_cache(maxsize=1)
def _in_one_statement() -> sa.CompoundSelect[Any]:
    """Built once per process, with its values as parameters: building a statement is a good
    part of SQLAlchemy's work per statement, and a built one leaves reference cycles for the
    garbage collector, whose pauses are what a push's slowest answers wait for."""
    school_id: sa.BindParameter[str] = sa.bindparam("school_id", type_=sa.String)

    def arm(kind: str, *columns: Any) -> sa.Select[Any]:
        return sa.select(sa.literal_column(f"'{kind}'").label("kind"),
                         sa.func.json_build_array(*columns, type_=sa.JSON).label("row"))

    def each(name: str) -> sa.BindParameter[Any]:
        return sa.bindparam(name, expanding=True)

    return sa.union_all(
        arm("credential", credentials.c.uid, credentials.c.wallet_id, credentials.c.status,
            credentials.c.blocked_at)
        .where(credentials.c.school_id == school_id, credentials.c.uid.in_(each("uids"))),
        arm("cashier", cashiers.c.cashier_id)
        .where(cashiers.c.cashier_id.in_(each("cashier_ids")),
               cashiers.c.school_id == school_id),
        arm("restriction", wallet_restrictions.c.wallet_id, wallet_restrictions.c.kind,
            wallet_restrictions.c.value, wallet_restrictions.c.since,
            wallet_restrictions.c.until)
        .where(wallet_restrictions.c.school_id == school_id,
               wallet_restrictions.c.wallet_id.in_(each("wallet_ids"))),
        arm("price", product_prices.c.product_id, product_prices.c.valid_from,
            product_prices.c.price)
        .select_from(product_prices.join(
            products, products.c.product_id == product_prices.c.product_id))
        .where(products.c.school_id == school_id,
               products.c.product_id.in_(each("product_ids"))),
    )


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
