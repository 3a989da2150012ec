"""Wallet balances at the end of a school day, replayed from the postings; negative balances.

A balance at a date is what the wallet's account received minus what it sent, over postings
*posted* before the end of that school day (``posted_at``), not the cached
``wallets.balance``. ``posted_at`` rather than ``occurred_at``: the balance sheet of a month
must not change after it is closed. A sale made offline on the 31st and synced on the 1st is
in the 31st's Z report (its business day) but in the balances from the 1st on, when the ledger
learnt of it; the month's balances then agree with the bank and gateway statements of the
same dates, and re-printing them a month later gives the same figures.

Without a date the list shows today's balances from the wallets themselves (the ledger
keeps ``wallets.balance`` equal to the postings' sum in the same transaction).

Sums are grouped in the database; the page's rows and the list's totals (over every matching
wallet, not only the page) come from one query with window sums.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..storage.schema import postings, wallets
from .periods import day_period

SORTS = {"name": wallets.c.display_name, "student_number": wallets.c.student_number,
         "grade": wallets.c.grade, "homeroom": wallets.c.homeroom, "status": wallets.c.status}
DEFAULT_SORT = "name"


@dataclass(frozen=True, slots=True)
class BalanceRow:
    wallet_id: str
    display_name: str
    student_number: str | None
    grade: str | None
    homeroom: str | None
    status: str
    balance: int


@dataclass(frozen=True, slots=True)
class Balances:
    day: date | None           # None: now (the wallets' current balances)
    as_of: datetime | None     # the instant replayed to (end of ``day``)
    rows: tuple[BalanceRow, ...]
    count: int                 # matching wallets (every page)
    total: int                 # sum of their balances
    negative_count: int
    negative_total: int


def ledger_balances(school_id: str, before: datetime) -> sa.Subquery:
    """Per wallet account: received minus sent over postings posted before ``before``."""
    moves = sa.union_all(
        sa.select(postings.c.to_account.label("account"), postings.c.amount.label("delta"))
        .where(postings.c.school_id == school_id, postings.c.posted_at < before),
        sa.select(postings.c.from_account.label("account"),
                  (-postings.c.amount).label("delta"))
        .where(postings.c.school_id == school_id, postings.c.posted_at < before),
    ).subquery("m")
    return (sa.select(moves.c.account, sa.func.sum(moves.c.delta).label("balance"))
            .group_by(moves.c.account).subquery("b"))


def listing(school_id: str, day: date | None, timezone: str, *,
            negative_only: bool = False) -> tuple[sa.Select[Any], datetime | None]:
    """Every wallet of the school with its balance (at the end of ``day``), unsorted and
    unpaged, with the list's totals as window columns."""
    if day is None:
        balance: Any = wallets.c.balance
        source: Any = wallets
        as_of = None
    else:
        as_of = day_period(day, timezone).end
        b = ledger_balances(school_id, as_of)
        balance = sa.func.coalesce(b.c.balance, 0)
        source = wallets.outerjoin(b, b.c.account == wallets.c.wallet_id)
    negative = sa.case((balance < 0, balance), else_=0)
    stmt = (sa.select(wallets.c.wallet_id, wallets.c.display_name, wallets.c.student_number,
                      wallets.c.grade, wallets.c.homeroom, wallets.c.status,
                      balance.label("balance"),
                      sa.func.count().over().label("n_all"),
                      sa.func.sum(balance).over().label("sum_all"),
                      sa.func.sum(sa.case((balance < 0, 1), else_=0)).over().label("n_neg"),
                      sa.func.sum(negative).over().label("sum_neg"))
            .select_from(source).where(wallets.c.school_id == school_id))
    if day is not None:
        # A wallet opened after the day had no balance then.
        stmt = stmt.where(wallets.c.created_at < as_of)
    if negative_only:
        stmt = stmt.where(balance < 0)
    return stmt, as_of


async def balances_at(conn: AsyncConnection, school_id: str, day: date | None, timezone: str,
                      *, negative_only: bool = False, sort: str = DEFAULT_SORT,
                      descending: bool = False, limit: int = 50,
                      offset: int = 0) -> Balances:
    stmt, as_of = listing(school_id, day, timezone, negative_only=negative_only)
    order = sa.literal_column("balance") if sort == "balance" else SORTS.get(
        sort, SORTS[DEFAULT_SORT])
    stmt = stmt.order_by(order.desc() if descending else order.asc(), wallets.c.wallet_id)
    rows = (await conn.execute(stmt.limit(limit).offset(offset))).all()
    if rows:
        first = rows[0]
        count, total = int(first.n_all), int(first.sum_all or 0)
        neg_count, neg_total = int(first.n_neg or 0), int(first.sum_neg or 0)
    else:
        count = total = neg_count = neg_total = 0
        if offset:  # past the last page: the totals still describe the whole list
            whole = (await conn.execute(stmt.limit(1))).first()
            if whole is not None:
                count, total = int(whole.n_all), int(whole.sum_all or 0)
                neg_count, neg_total = int(whole.n_neg or 0), int(whole.sum_neg or 0)
    return Balances(day, as_of, tuple(
        BalanceRow(r.wallet_id, r.display_name, r.student_number, r.grade, r.homeroom,
                   r.status, int(r.balance)) for r in rows), count, total, neg_count, neg_total)
