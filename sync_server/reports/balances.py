"""Wallet balances at the end of a school day, replayed from the postings; negative balances.

A balance at a date is what the wallet's account received minus what it sent, over postings
*posted* before the end of that school day (``posted_at``), not the cached
``wallets.balance``. ``posted_at`` rather than ``occurred_at``: the balance sheet of a month
must not change after it is closed. A sale made offline on the 31st and synced on the 1st is
in the 31st's Z report (its business day) but in the balances from the 1st on, when the ledger
learnt of it; the month's balances then agree with the bank and gateway statements of the
same dates, and re-printing them a month later gives the same figures.

Without a date the list shows today's balances from the wallets themselves (the ledger
keeps ``wallets.balance`` equal to the postings' sum in the same transaction). A date nearer
the school's last posting than its first is replayed backwards, in the same statement: today's
balance minus what was posted since, which for last month's end reads a few weeks of day nets
instead of the school's whole history; an earlier date is replayed forwards from the first
day. Both are the ledger (``audit-ledger`` checks that
the cached balance is the postings' sum), and the tests hold both to a replay of the postings.

The replay reads the ``wallet_day_nets`` rollup (each wallet's net per school-local day of
``posted_at``, kept by the ledger in the postings' own transaction and checked by
``audit-ledger``): a month-end of a year-old school sums a wallet's days, not its postings.

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
from ..storage.schema_rollups import wallet_day_nets
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


def ledger_sums(school_id: str, window: sa.ColumnElement[bool]) -> sa.Subquery:
    """Per wallet: the sum of its daily nets (``wallet_day_nets``) over the days in
    ``window``."""
    n = wallet_day_nets
    return (sa.select(n.c.wallet_id.label("account"), sa.func.sum(n.c.net).label("delta"))
            .where(n.c.school_id == school_id, window)
            .group_by(n.c.wallet_id).subquery("b"))


def backwards(as_of: datetime, first: datetime, last: datetime) -> bool:
    """Replay from today back to ``as_of`` when fewer postings follow it than precede it,
    judged by time between the school's first and last posting (two index look-ups; the
    postings of a school are spread over its school days roughly evenly)."""
    return last - as_of < as_of - first


async def replay_backward(conn: AsyncConnection, school_id: str, day: date | None,
                          timezone: str) -> bool:
    if day is None:
        return False
    mine = postings.c.school_id == school_id
    first = (await conn.execute(sa.select(sa.func.min(postings.c.posted_at))
                                .where(mine))).scalar_one()
    last = (await conn.execute(sa.select(sa.func.max(postings.c.posted_at))
                               .where(mine))).scalar_one()
    if first is None or last is None:
        return False
    return backwards(day_period(day, timezone).end, first, last)


def ordered(stmt: sa.Select[Any], sort: str, descending: bool) -> sa.Select[Any]:
    """By a column of :data:`SORTS` or ``balance`` (others: the default), then wallet ID."""
    column: Any = sa.literal_column("balance") if sort == "balance" else SORTS.get(
        sort, SORTS[DEFAULT_SORT])
    return stmt.order_by(column.desc() if descending else column.asc(), wallets.c.wallet_id)


def listing(school_id: str, day: date | None, timezone: str, *, negative_only: bool = False,
            backward: bool = False) -> tuple[sa.Select[Any], datetime | None]:
    """Every wallet of the school with its balance (at the end of ``day``), unsorted and
    unpaged, with the list's totals as window columns."""
    if day is None:
        balance: Any = wallets.c.balance
        source: Any = wallets
        as_of = None
    else:
        as_of = day_period(day, timezone).end
        # Posted before the end of the school day <=> posted on a school day up to it.
        last = day.isoformat()
        window = (wallet_day_nets.c.day > last if backward
                  else wallet_day_nets.c.day <= last)
        b = ledger_sums(school_id, window)
        later_or_before = sa.func.coalesce(b.c.delta, 0)
        balance = wallets.c.balance - later_or_before if backward else later_or_before
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
                      descending: bool = False, limit: int = 50, offset: int = 0,
                      backward: bool | None = None) -> Balances:
    """``backward`` None picks the shorter replay (:func:`backwards`)."""
    if backward is None:
        backward = await replay_backward(conn, school_id, day, timezone)
    stmt, as_of = listing(school_id, day, timezone, negative_only=negative_only,
                          backward=backward)
    stmt = ordered(stmt, sort, descending)
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
