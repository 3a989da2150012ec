"""Money into and out of wallets other than sales: top-ups and refunds by day, with references.

Two sources, one list: gateway events that moved money (``payment_events`` credited or
debited: online top-ups, refunds, chargebacks, with the gateway's reference) and money people
moved in the console (``money_ops``: manual top-ups, adjustments, held payments credited by
hand, opening balances). Reversals of sales are not here: they belong to the sales reports
(the Z report counts them). Amounts are signed as seen from the wallet, so the list's total is
the net money that came into wallets.

Each row's day is the school-local day the ledger recorded it (``received_at`` of a gateway
event, ``created_at`` of an operation), the day it shows in the wallet's history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..storage.schema import money_ops, payment_events, wallets
from .local_time import local_day
from .periods import Period

# What a row is, in the report's words: gateway event types and console operation kinds.
GATEWAY = "gateway"
CONSOLE = "console"
# A leaver's refund is money out (a refund row); a transfer to a sibling stays among wallets.
CONSOLE_KINDS = ("topup", "adjustment", "payment_credit", "opening", "refund")
SORTS = ("at", "amount", "kind", "reference")


@dataclass(frozen=True, slots=True)
class Flow:
    at: datetime
    day: str
    source: str            # gateway|console
    kind: str              # the event type, or the operation's kind
    wallet_id: str
    display_name: str | None
    student_number: str | None
    amount: int            # signed: + into the wallet
    reference: str         # the gateway's reference, or the console operation's reason


@dataclass(frozen=True, slots=True)
class DayFlows:
    day: str
    topups_count: int
    topups_amount: int     # positive rows: gateway top-ups, manual top-ups, credits, openings
    refunds_count: int
    refunds_amount: int    # negative rows (as a positive sum): refunds, chargebacks, debits

    @property
    def net(self) -> int:
        return self.topups_amount - self.refunds_amount


@dataclass(frozen=True, slots=True)
class Flows:
    period: Period
    days: tuple[DayFlows, ...]
    rows: tuple[Flow, ...]   # one page
    count: int               # every row of the period
    topups_amount: int
    refunds_amount: int

    @property
    def net(self) -> int:
        return self.topups_amount - self.refunds_amount


def flows(school_id: str, period: Period, dialect: str) -> sa.Subquery:
    """Every money movement of the period, as ``(at, day, source, kind, wallet_id, amount,
    reference)`` rows."""
    pe = payment_events
    gateway = (
        sa.select(pe.c.received_at.label("at"),
                  local_day(pe.c.received_at, period, dialect).label("day"),
                  sa.literal(GATEWAY).label("source"), pe.c.event_type.label("kind"),
                  pe.c.wallet_id,
                  sa.case((pe.c.status == "debited", -pe.c.amount), else_=pe.c.amount)
                  .label("amount"), pe.c.reference.label("reference"))
        .where(pe.c.school_id == school_id, pe.c.status.in_(["credited", "debited"]),
               pe.c.received_at >= period.start, pe.c.received_at < period.end))
    mo = money_ops
    console = (
        sa.select(mo.c.created_at.label("at"),
                  local_day(mo.c.created_at, period, dialect).label("day"),
                  sa.literal(CONSOLE).label("source"), mo.c.kind.label("kind"),
                  mo.c.wallet_id, mo.c.amount.label("amount"),
                  sa.func.coalesce(mo.c.payment_event_id, mo.c.reason, "").label("reference"))
        .where(mo.c.school_id == school_id, mo.c.kind.in_(CONSOLE_KINDS),
               mo.c.created_at >= period.start, mo.c.created_at < period.end))
    return sa.union_all(gateway, console).subquery("f")


def listing(school_id: str, period: Period, dialect: str, *, sort: str = "at",
            descending: bool = True) -> sa.Select[Any]:
    """The period's rows with the student's name, sorted (``sort`` one of :data:`SORTS`)."""
    f = flows(school_id, period, dialect)
    w = wallets.alias("w")
    column = f.c[sort if sort in SORTS else "at"]
    return (sa.select(f, w.c.display_name, w.c.student_number)
            .select_from(f.outerjoin(w, sa.and_(w.c.wallet_id == f.c.wallet_id,
                                                w.c.school_id == school_id)))
            .order_by(column.desc() if descending else column.asc(), f.c.at.desc()))


async def money_flows(conn: AsyncConnection, school_id: str, period: Period, *,
                      sort: str = "at", descending: bool = True, limit: int = 50,
                      offset: int = 0) -> Flows:
    dialect = conn.dialect.name
    f = flows(school_id, period, dialect)
    incoming = f.c.amount > 0
    per_day = (await conn.execute(
        sa.select(f.c.day,
                  sa.func.sum(sa.case((incoming, 1), else_=0)).label("tn"),
                  sa.func.sum(sa.case((incoming, f.c.amount), else_=0)).label("ta"),
                  sa.func.sum(sa.case((incoming, 0), else_=1)).label("rn"),
                  sa.func.sum(sa.case((incoming, 0), else_=-f.c.amount)).label("ra"))
        .group_by(f.c.day).order_by(f.c.day))).all()
    days = tuple(DayFlows(r.day, int(r.tn), int(r.ta), int(r.rn), int(r.ra)) for r in per_day)
    rows = (await conn.execute(listing(school_id, period, dialect, sort=sort,
                                       descending=descending).limit(limit).offset(offset)))
    page = tuple(Flow(r.at, r.day, r.source, r.kind, r.wallet_id, r.display_name,
                      r.student_number, int(r.amount), r.reference) for r in rows)
    return Flows(period, days, page, sum(d.topups_count + d.refunds_count for d in days),
                 sum(d.topups_amount for d in days), sum(d.refunds_amount for d in days))
