"""A gateway's settlement report against the ledger's payments (``pos-server reconcile-payments``).

The report is a CSV with the columns ``reference,amount,currency,status,settled_at`` (others are
ignored): one line per payment the gateway settled, ``amount`` in integer minor units.
What the comparison decides, and why (docs/server.md, "Payment reconciliation"):

- only lines whose status is ``completed`` or ``settled`` (any case) say money reached the
  school; other statuses (``refunded``, ``failed``, ``pending`` …) are read, checked for
  form, and not compared; several settled lines of one reference are added up;
- a reference is *matched* when the ledger credited it (``payments.credited``) exactly the
  settled amount, in the settled currency;
- *missing in ledger*: settled, but the ledger credited nothing for it (no payment, or one
  still pending, held or failed: ``ledger_state`` says which);
- *amount mismatch*: both have it, with another amount or currency;
- *missing in settlement*: the ledger credited it, within the report's time span (the first
  to the last ``settled_at`` of its settled lines), and no settled line names it. The span
  keeps a report for one day from listing every credit of other days; a credit near the end
  of the span may settle in the next report.

A malformed report is refused as a whole, naming the line, before the database is opened;
the database is read in a read-only transaction, so nothing can change.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.clock import rfc3339

from .storage.bulk import chunks
from .storage.schema import payments, postings

COLUMNS = ("reference", "amount", "currency", "status", "settled_at")
SETTLED = frozenset({"completed", "settled"})
WHOLE_NUMBER = re.compile(r"-?[0-9]+")
CURRENCY = re.compile(r"[A-Z]{3}")


class SettlementError(ValueError):
    """The report cannot be read; the message is one line naming the file and the line."""


@dataclass(frozen=True, slots=True)
class SettlementLine:
    line: int  # in the file, the header being line 1
    reference: str
    amount: int
    currency: str
    status: str  # lower-case
    settled_at: datetime


@dataclass(slots=True)
class Settled:
    """The settled lines of one reference, added up."""

    reference: str
    amount: int = 0
    currencies: set[str] = field(default_factory=set)
    lines: list[int] = field(default_factory=list)
    settled_at: datetime | None = None  # the latest

    @property
    def currency(self) -> str:
        return ",".join(sorted(self.currencies))


def read_settlement(path: str | Path) -> list[SettlementLine]:
    name = Path(path).name
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            return parse_settlement(fh, name)
    except UnicodeDecodeError:
        raise SettlementError(f"{name}: not UTF-8 text") from None
    except csv.Error as exc:
        raise SettlementError(f"{name}: not a CSV file ({exc})") from None


def parse_settlement(text: Iterable[str], name: str) -> list[SettlementLine]:
    reader = csv.reader(text)
    header = [h.strip().lower() for h in next(reader, [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise SettlementError(f"{name}: missing column(s) {', '.join(missing)}; the header "
                              f"must name {','.join(COLUMNS)}")
    where = {c: header.index(c) for c in COLUMNS}
    lines = []
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue  # a blank line, as spreadsheets leave at the end
        lines.append(_line(cells, where, reader.line_num, name))
    return lines


def _line(cells: list[str], where: dict[str, int], number: int, name: str) -> SettlementLine:
    def bad(words: str) -> SettlementError:
        return SettlementError(f"{name} line {number}: {words}")

    if len(cells) <= max(where.values()):
        raise bad(f"{len(cells)} field(s), the header has {max(where.values()) + 1} or more")
    value = {c: cells[i].strip() for c, i in where.items()}
    if not value["reference"]:
        raise bad("empty reference")
    if not WHOLE_NUMBER.fullmatch(value["amount"]):
        raise bad(f"amount {value['amount'][:20]!r} is not a whole number of minor units")
    amount = int(value["amount"])
    if not CURRENCY.fullmatch(value["currency"]):
        raise bad(f"currency {value['currency'][:20]!r} is not a code such as SAR")
    status = value["status"].lower()
    if not status:
        raise bad("empty status")
    if status in SETTLED and amount <= 0:
        raise bad(f"a settled amount must be positive, not {amount}")
    try:
        settled_at = datetime.fromisoformat(value["settled_at"])
    except ValueError:
        raise bad(f"settled_at {value['settled_at'][:40]!r} is not an RFC 3339 time") from None
    if settled_at.tzinfo is None:
        raise bad(f"settled_at {value['settled_at'][:40]!r} has no UTC offset")
    return SettlementLine(number, value["reference"][:200], amount, value["currency"], status,
                          settled_at)


def settled_by_reference(lines: Iterable[SettlementLine]) -> dict[str, Settled]:
    settled: dict[str, Settled] = {}
    for ln in lines:
        if ln.status not in SETTLED:
            continue
        entry = settled.setdefault(ln.reference, Settled(ln.reference))
        entry.amount += ln.amount
        entry.currencies.add(ln.currency)
        entry.lines.append(ln.line)
        entry.settled_at = max(entry.settled_at or ln.settled_at, ln.settled_at)
    return settled


# ------------------------------------------------------------------ the ledger's side


def _payment_columns() -> list[Any]:
    credited_at = sa.func.coalesce(postings.c.posted_at, payments.c.updated_at)
    return [payments.c.payment_id, payments.c.school_id, payments.c.reference,
            payments.c.wallet_id, payments.c.currency, payments.c.state, payments.c.credited,
            credited_at.label("credited_at")]


def _with_credit_time(query: sa.Select[Any]) -> sa.Select[Any]:
    return query.select_from(payments.outerjoin(
        postings, postings.c.posting_id == payments.c.credit_txn_id))


@asynccontextmanager
async def read_only(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection that cannot write: PostgreSQL's READ ONLY transaction, SQLite's
    ``query_only`` (set back before the connection returns to the pool)."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(readonly=True)  # SQLite: BEGIN DEFERRED
        sqlite = conn.dialect.name == "sqlite"
        await conn.execute(sa.text("PRAGMA query_only = ON" if sqlite
                                   else "SET TRANSACTION READ ONLY"))
        try:
            yield conn
        finally:
            await conn.rollback()
            if sqlite:
                await conn.execute(sa.text("PRAGMA query_only = OFF"))
                await conn.rollback()


async def reconcile(engine: AsyncEngine, lines: list[SettlementLine]) -> dict[str, Any]:
    """``{"matched", "missing_in_ledger", "missing_in_settlement", "amount_mismatch"}``."""
    settled = settled_by_reference(lines)
    others: dict[str, list[str]] = defaultdict(list)  # not-settled statuses, per reference
    for ln in lines:
        if ln.status not in SETTLED:
            others[ln.reference].append(ln.status)
    async with read_only(engine) as conn:
        named: dict[str, Any] = {}
        for part in chunks(settled):
            for row in await conn.execute(_with_credit_time(
                    sa.select(*_payment_columns()).where(payments.c.reference.in_(part)))):
                named[row.reference] = row
        span = [s.settled_at for s in settled.values() if s.settled_at is not None]
        in_span = [] if not span else (await conn.execute(_with_credit_time(
            sa.select(*_payment_columns()).where(
                payments.c.credited > 0,
                sa.func.coalesce(postings.c.posted_at, payments.c.updated_at)
                .between(min(span), max(span)))
            .order_by(payments.c.reference)))).all()

    matched, missing_in_ledger, mismatched = 0, [], []
    for reference in sorted(settled):
        entry, row = settled[reference], named.get(reference)
        if row is None or not row.credited:
            missing_in_ledger.append({
                "reference": reference, "amount": entry.amount, "currency": entry.currency,
                "settled_at": rfc3339(entry.settled_at) if entry.settled_at else None,
                "lines": entry.lines, "ledger_state": row.state if row else None})
        elif int(row.credited) != entry.amount or row.currency != entry.currency:
            mismatched.append({
                "reference": reference, "payment_id": row.payment_id,
                "school_id": row.school_id, "settlement_amount": entry.amount,
                "ledger_amount": int(row.credited), "settlement_currency": entry.currency,
                "ledger_currency": row.currency, "lines": entry.lines})
        else:
            matched += 1
    missing_in_settlement = [{
        "reference": row.reference, "payment_id": row.payment_id, "school_id": row.school_id,
        "wallet_id": row.wallet_id, "amount": int(row.credited), "currency": row.currency,
        "state": row.state, "credited_at": rfc3339(row.credited_at),
        "settlement_statuses": others.get(row.reference, [])}
        for row in in_span if row.reference not in settled]
    return {"matched": matched, "missing_in_ledger": missing_in_ledger,
            "missing_in_settlement": missing_in_settlement, "amount_mismatch": mismatched}
