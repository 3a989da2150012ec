"""A wallet's monthly statement: opening balance, every movement with a running balance,
closing balance, read from the journal (``postings``), never from ``wallets.balance``.

Opening is the sum of the wallet's postings before the month; each movement adds its signed
amount; closing is where the running balance ends. So opening + movements = closing holds by
construction, and closing equals the wallet's balance at the month's end because the balance
is itself what the journal says (``audit-ledger`` checks that).

A movement belongs to the month in which it was *posted* (reached the ledger), in the
school's time zone, as on a bank statement: the balance column then matches what the wallet
held at each moment. A sale made offline on the 31st and synced on the 1st is on the next
month's statement, with the till's own time beside it (``occurred_at``); the Z report, which
counts sales by the day they were made, shows it on the 31st.

What a movement was is taken from the sale it belongs to (the items, and the bracelet,
masked as in logs: a statement is printed and handed on) or from the memo an admin or the
payment gateway left. A month of one wallet is a few hundred rows at most, read in one query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..storage.schema import postings, sales, schools, wallets
from .periods import Period, make

MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")  # ASCII digits, as days (date.fromisoformat)


class MonthError(ValueError):
    """``?month=`` is not a ``YYYY-MM`` month this server can report on."""


@dataclass(frozen=True, slots=True)
class Movement:
    posting_id: str
    kind: str                  # sale|void|topup|refund|chargeback|adjustment|reversal
    posted_at: datetime
    occurred_at: datetime      # business time: the till's clock for sales
    amount: int                # signed, as seen from the wallet
    balance: int               # the running balance after this movement
    sale_ref: str | None
    items: list[dict[str, Any]] | None  # the sale's lines (sales, voids, reversals)
    credential_uid: str | None  # the bracelet a till read (shown masked)
    memo: str | None


@dataclass(frozen=True, slots=True)
class Statement:
    school_id: str
    school_name: str
    currency: str
    timezone: str
    wallet_id: str
    display_name: str
    student_number: str | None
    grade: str | None
    homeroom: str | None
    month: date                # the first day of the month
    period: Period
    opening: int
    movements: tuple[Movement, ...]

    @property
    def closing(self) -> int:
        return self.movements[-1].balance if self.movements else self.opening

    @property
    def money_in(self) -> int:
        return sum(m.amount for m in self.movements if m.amount > 0)

    @property
    def money_out(self) -> int:
        """Positive: what left the wallet in the month."""
        return -sum(m.amount for m in self.movements if m.amount < 0)


def parse_month(text: str | None, today: date) -> date:
    """``YYYY-MM`` -> the month's first day; empty means the month of ``today`` (the
    school's today)."""
    if not text:
        return today.replace(day=1)
    m = MONTH.fullmatch(text.strip())
    if not m or not (1 <= int(m.group(2)) <= 12) or not (2000 <= int(m.group(1)) <= 2100):
        raise MonthError(text)
    return date(int(m.group(1)), int(m.group(2)), 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def previous_month(month: date) -> date:
    return date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


async def statement(conn: AsyncConnection, school_id: str, wallet_id: str,
                    month: date) -> Statement | None:
    """The statement of ``wallet_id`` for ``month`` (any day of it), or None when the school
    has no such wallet (the console answers 404, for another school's wallet too)."""
    month = month.replace(day=1)
    wallet = (await conn.execute(
        sa.select(wallets.c.display_name, wallets.c.student_number, wallets.c.grade,
                  wallets.c.homeroom, schools.c.name.label("school_name"), schools.c.currency,
                  schools.c.timezone)
        .select_from(wallets.join(schools, schools.c.school_id == wallets.c.school_id))
        .where(wallets.c.school_id == school_id, wallets.c.wallet_id == wallet_id))).first()
    if wallet is None:
        return None
    period = make("custom", month, date.fromordinal(next_month(month).toordinal() - 1),
                  wallet.timezone)
    opening = int((await conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(sa.literal_column("signed")), 0))
        .select_from(_touching(wallet_id, postings.c.posted_at < period.start)))
    ).scalar_one())
    month_rows = _touching(wallet_id, postings.c.posted_at >= period.start,
                           postings.c.posted_at < period.end, detail=True)
    m = month_rows.c
    rows = (await conn.execute(
        sa.select(m.posting_id, m.kind, m.posted_at, m.occurred_at, m.signed, m.sale_ref,
                  m.memo, sales.c.lines, sales.c.credential_uid)
        .select_from(month_rows.outerjoin(sales, sa.and_(sales.c.school_id == school_id,
                                                         sales.c.ref == m.sale_ref)))
        .order_by(m.posted_at, m.posting_id))).all()
    running, movements = opening, []
    for r in rows:
        running += int(r.signed)
        movements.append(Movement(r.posting_id, r.kind, r.posted_at, r.occurred_at,
                                  int(r.signed), running, r.sale_ref, r.lines,
                                  r.credential_uid, r.memo))
    return Statement(school_id, wallet.school_name, wallet.currency, wallet.timezone,
                     wallet_id, wallet.display_name, wallet.student_number, wallet.grade,
                     wallet.homeroom, month, period, opening, tuple(movements))


def _touching(wallet_id: str, *when: Any, detail: bool = False) -> sa.Subquery:
    """The wallet's postings matching ``when``, each with its amount signed as the wallet
    sees it: credits through ``ix_postings_to``, debits through ``ix_postings_from``, as one
    UNION ALL (a posting never has the wallet on both sides: ck_postings_two_accounts).

    Written as ``to = w OR from = w`` together with the school and a time range, the query
    went through ``ix_postings_school_posted`` instead and read every posting of the school
    in the range (290 ms for one wallet's opening balance on a SQLite school year). The
    school is not repeated here: account IDs are unique across schools, and the caller has
    found the wallet in its school first."""
    p = postings.c
    extra = [p.posting_id, p.kind, p.posted_at, p.occurred_at, p.sale_ref, p.memo] if detail \
        else []
    credits = sa.select(*extra, p.amount.label("signed")).where(p.to_account == wallet_id, *when)
    debits = sa.select(*extra, (-p.amount).label("signed")).where(p.from_account == wallet_id,
                                                                   *when)
    return sa.union_all(credits, debits).subquery("touching")
