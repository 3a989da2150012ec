"""The end-of-day (Z) report of one school day: per terminal, per cashier, and the school.

Which day a sale belongs to is its ``business_day``: the school-local calendar day of the
till's clock when the sale was made (the server's receipt day when that clock is not
trusted). A sale made offline on Monday and synced on Tuesday therefore lands on Monday's
report, and Monday's report printed on Monday evening lacks it: that is why each terminal
shows its last contact and what the server knows is missing from it, with a warning when the
server last heard from the till before the day was over.

Voids count on their own ``business_day`` at the till that made them (they are sales of kind
``void``). Admin reversals are made in the console, not at a till: they count on the school
day on which they were recorded, against the terminal and cashier of the sale they reverse.
Net is sales minus voids minus reversals, which is what the revenue account received that day.
Rejected sales moved no money; they are counted, never added.

Every figure is a GROUP BY in the database, so the report costs the same however many sales
the day had; the Python below only folds the (terminal, cashier) groups, of which a school
has a few dozen.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow

from ..ledger import seqs
from ..storage.schema import cashiers, devices, money_ops, sales, schools
from .periods import Period, day_period

# While the day is still running, a till silent for longer than this may hold sales the
# report cannot show yet; after the day, any till last heard from before its end may.
QUIET = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Figures:
    """Counts and amounts (minor units, all positive) of one terminal, cashier or school."""

    sales_count: int = 0
    sales_amount: int = 0
    voids_count: int = 0
    voids_amount: int = 0
    reversals_count: int = 0
    reversals_amount: int = 0
    offline_count: int = 0       # sales made while the till was offline (part of sales_*)
    offline_amount: int = 0
    rejected_count: int = 0      # refused sales and voids: stored, no money moved

    @property
    def net(self) -> int:
        return self.sales_amount - self.voids_amount - self.reversals_amount

    def __add__(self, other: Figures) -> Figures:
        return Figures(*(a + b for a, b in zip(_values(self), _values(other), strict=True)))


def _values(f: Figures) -> tuple[int, ...]:
    return (f.sales_count, f.sales_amount, f.voids_count, f.voids_amount, f.reversals_count,
            f.reversals_amount, f.offline_count, f.offline_amount, f.rejected_count)


@dataclass(frozen=True, slots=True)
class TerminalLine:
    device_id: str
    name: str
    status: str                       # active|revoked
    figures: Figures
    last_seen_at: datetime | None     # the till's last contact of any kind
    acked_seq: int                    # every sale up to this seq is on the server
    max_seq: int                      # the highest seq the server has seen
    missing_seqs: tuple[int, ...]     # known gaps below max_seq (first 100)
    may_be_incomplete: bool           # see QUIET: later sales of the day may still come


@dataclass(frozen=True, slots=True)
class CashierLine:
    cashier_id: str
    name: str
    figures: Figures


@dataclass(frozen=True, slots=True)
class ZReport:
    school_id: str
    school_name: str
    currency: str
    timezone: str
    day: date
    period: Period                    # the day's UTC bounds
    generated_at: datetime
    day_over: bool                    # False while the school day is still running
    terminals: tuple[TerminalLine, ...]
    cashiers: tuple[CashierLine, ...]
    totals: Figures = field(default_factory=Figures)

    @property
    def incomplete_terminals(self) -> tuple[TerminalLine, ...]:
        return tuple(t for t in self.terminals if t.may_be_incomplete)


async def z_report(conn: AsyncConnection, school_id: str, day: date, *,
                   now: datetime | None = None) -> ZReport:
    """The Z report of ``school_id`` for school day ``day``. ``now`` (aware; default the
    clock) decides whether the day is over, for the warnings."""
    now = now or utcnow()
    school = (await conn.execute(
        sa.select(schools.c.name, schools.c.currency, schools.c.timezone)
        .where(schools.c.school_id == school_id))).one()
    period = day_period(day, school.timezone)
    groups = await _sale_groups(conn, school_id, day.isoformat())
    for key, figures in (await _reversal_groups(conn, school_id, period)).items():
        groups[key] = groups.get(key, Figures()) + figures
    per_device: dict[str, Figures] = defaultdict(Figures)
    per_cashier: dict[str, Figures] = defaultdict(Figures)
    for (device_id, cashier_id), figures in groups.items():
        per_device[device_id] += figures
        per_cashier[cashier_id] += figures
    day_over = now >= period.end
    terminals = await _terminals(conn, school_id, per_device, period, now, day_over)
    names = await _cashier_names(conn, school_id, per_cashier)
    cashier_lines = tuple(sorted(
        (CashierLine(cid, names.get(cid, cid), f) for cid, f in per_cashier.items()),
        key=lambda c: (c.name.lower(), c.cashier_id)))
    totals = sum(groups.values(), Figures())
    return ZReport(school_id, school.name, school.currency, school.timezone, day, period, now,
                   day_over, terminals, cashier_lines, totals)


def _count(cond: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(sa.func.sum(sa.case((cond, 1), else_=0)), 0)


def _amount(cond: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(sa.func.sum(sa.case((cond, sales.c.total), else_=0)), 0)


async def _sale_groups(conn: AsyncConnection, school_id: str,
                       day: str) -> dict[tuple[str, str], Figures]:
    applied = sales.c.status == "applied"
    sale = sa.and_(applied, sales.c.kind == "sale")
    void = sa.and_(applied, sales.c.kind == "void")
    offline = sa.and_(sale, sales.c.offline)
    rows = await conn.execute(
        sa.select(sales.c.device_id, sales.c.cashier_id,
                  _count(sale).label("sn"), _amount(sale).label("sa"),
                  _count(void).label("vn"), _amount(void).label("va"),
                  _count(offline).label("on"), _amount(offline).label("oa"),
                  _count(sales.c.status == "rejected").label("rn"))
        .where(sales.c.school_id == school_id, sales.c.business_day == day)
        .group_by(sales.c.device_id, sales.c.cashier_id))
    return {(r.device_id, r.cashier_id): Figures(
        sales_count=int(r.sn), sales_amount=int(r.sa), voids_count=int(r.vn),
        voids_amount=int(r.va), offline_count=int(r.on), offline_amount=int(r.oa),
        rejected_count=int(r.rn)) for r in rows}


async def _reversal_groups(conn: AsyncConnection, school_id: str,
                           period: Period) -> dict[tuple[str, str], Figures]:
    """Reversals recorded during the day, by the reversed sale's terminal and cashier."""
    rows = await conn.execute(
        sa.select(sales.c.device_id, sales.c.cashier_id, sa.func.count().label("n"),
                  sa.func.sum(money_ops.c.amount).label("amount"))
        .select_from(money_ops.join(sales, sa.and_(sales.c.school_id == money_ops.c.school_id,
                                                    sales.c.ref == money_ops.c.sale_ref)))
        .where(money_ops.c.school_id == school_id, money_ops.c.kind == "reversal",
               money_ops.c.created_at >= period.start, money_ops.c.created_at < period.end)
        .group_by(sales.c.device_id, sales.c.cashier_id))
    return {(r.device_id, r.cashier_id): Figures(reversals_count=int(r.n),
                                                 reversals_amount=int(r.amount))
            for r in rows}


async def _terminals(conn: AsyncConnection, school_id: str, per_device: dict[str, Figures],
                     period: Period, now: datetime,
                     day_over: bool) -> tuple[TerminalLine, ...]:
    """Every active till, and any revoked one that sold that day; missing seqs are read per
    till (a school has a handful) from what is stored above its acked seq."""
    rows = (await conn.execute(
        sa.select(devices.c.device_id, devices.c.name, devices.c.status,
                  devices.c.last_seen_at, devices.c.acked_seq, devices.c.max_seq,
                  devices.c.enrolled_at)
        .where(devices.c.school_id == school_id))).all()
    known = {r.device_id for r in rows}
    lines: list[TerminalLine] = []
    for r in rows:
        if r.status != "active" and r.device_id not in per_device:
            continue
        if r.enrolled_at >= period.end and r.device_id not in per_device:
            continue  # enrolled after the day: it cannot owe the day anything
        missing = (await seqs.missing_for(conn, r.device_id, int(r.acked_seq))
                   if r.max_seq > r.acked_seq else [])
        heard = r.last_seen_at
        cutoff = period.end if day_over else now - QUIET
        lines.append(TerminalLine(
            r.device_id, r.name, r.status, per_device.get(r.device_id, Figures()), heard,
            int(r.acked_seq), int(r.max_seq), tuple(missing),
            heard is None or heard < cutoff or bool(missing)))
    # Sales of a device row that no longer exists still count (and show under their ID).
    lines += [TerminalLine(d, d, "unknown", f, None, 0, 0, (), True)
              for d, f in per_device.items() if d not in known]
    return tuple(sorted(lines, key=lambda t: (t.name.lower(), t.device_id)))


async def _cashier_names(conn: AsyncConnection, school_id: str,
                         ids: Iterable[str]) -> dict[str, str]:
    wanted = list(ids)
    if not wanted:
        return {}
    rows = await conn.execute(sa.select(cashiers.c.cashier_id, cashiers.c.name).where(
        cashiers.c.school_id == school_id, cashiers.c.cashier_id.in_(wanted)))
    return {r.cashier_id: r.name for r in rows}
