"""Telling a parent that a wallet fell below the school's low-balance threshold.

Called in the transaction that moved the money (a push's sales through
``ledger.sale_effects.after_write``, an admin's adjustment through ``ledger.money_ops``), so
the email and the ``wallet.low_balance`` event exist exactly when the debit does. Only a
*crossing* tells: a balance that was at or above ``schools.low_balance_threshold`` before and
is below it after. Both are keyed ``low_balance:<wallet>:<school-local day>`` with insert-once
writes, so a wallet tells at most once a day, across every process and host, and a second
crossing the same day writes nothing and fails nothing.

Cost on the push path: no query of its own. The push reads the threshold with the school's
other settings (``ledger.sales._load_context``); only a crossing reads the school's name and
the wallet's contact for the letter. No network: the mail and webhook jobs send later, in
their own transactions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..notify.outbox import emit
from ..storage.schema import schools, wallets
from . import texts
from .queue import enqueue

if TYPE_CHECKING:
    from ..ledger.judge import NewSale

log = logging.getLogger(__name__)

EVENT = "wallet.low_balance"
KIND = "low_balance"


def crossings(before: Mapping[str, int], after: Mapping[str, int],
              threshold: int) -> list[str]:
    """Wallets at or above ``threshold`` before and below it after, in a stable order."""
    return sorted(w for w, balance in after.items()
                  if w in before and before[w] >= threshold > balance)


def dedupe_key(wallet_id: str, now: datetime, timezone: str) -> str:
    """``low_balance:<wallet>:<YYYY-MM-DD>``, the day as the school's clock reads it."""
    return f"{KIND}:{wallet_id}:{now.astimezone(ZoneInfo(timezone)).date().isoformat()}"


async def after_sales(conn: AsyncConnection, school_id: str, applied: Iterable[NewSale],
                      balances_before: Mapping[str, int], threshold: int,
                      now: datetime) -> int:
    """From a push, with the school's ``threshold``: each applied sale or void
    (``judge.NewSale``) carries its wallet's balance after it; the last one per wallet is
    where the push left it. How many wallets crossed."""
    after: dict[str, int] = {}
    for new in applied:
        if new.balance_after is not None:
            after[new.prepared.sale.wallet_id] = int(new.balance_after)
    crossed = crossings(balances_before, after, threshold)
    if not crossed:
        return 0
    return await _tell(conn, school_id, crossed, after, threshold, now)


async def tell(conn: AsyncConnection, school_id: str, before: Mapping[str, int],
               after: Mapping[str, int], now: datetime) -> int:
    """Queue the email and emit the event for every wallet of ``after`` that crossed the
    school's threshold (read here: an admin's operation, not the push); how many crossed."""
    threshold = (await conn.execute(
        sa.select(schools.c.low_balance_threshold)
        .where(schools.c.school_id == school_id))).scalar_one_or_none()
    if threshold is None:
        return 0
    crossed = crossings(before, after, int(threshold))
    if not crossed:
        return 0
    return await _tell(conn, school_id, crossed, after, int(threshold), now)


async def _tell(conn: AsyncConnection, school_id: str, crossed: list[str],
                after: Mapping[str, int], threshold: int, now: datetime) -> int:
    school = (await conn.execute(
        sa.select(schools.c.name, schools.c.currency, schools.c.timezone)
        .where(schools.c.school_id == school_id))).one()
    rows = (await conn.execute(
        sa.select(wallets.c.wallet_id, wallets.c.display_name, wallets.c.student_number,
                  wallets.c.student_status, wallets.c.parent_email, wallets.c.language)
        .where(wallets.c.school_id == school_id, wallets.c.wallet_id.in_(crossed)))).all()
    for row in sorted(rows, key=lambda r: r.wallet_id):
        if row.student_status != "active":  # a student who left is not written about
            continue
        balance = after[row.wallet_id]
        key = dedupe_key(row.wallet_id, now, str(school.timezone))
        told = await emit(conn, school_id=school_id, event_type=EVENT, dedupe_key=key, data={
            "wallet_id": row.wallet_id, "student_number": row.student_number,
            "balance": balance, "threshold": threshold, "currency": school.currency})
        if not row.parent_email:
            continue
        language = texts.language_for(row.language, str(school.currency))
        letter = texts.low_balance(language, student=row.display_name, school=school.name,
                                   balance=balance, threshold=threshold,
                                   currency=str(school.currency))
        queued = await enqueue(conn, school_id=school_id, kind=KIND,
                               to_address=row.parent_email, subject=letter.subject,
                               body_text=letter.body, language=language, dedupe_key=key)
        if told or queued:
            log.info("wallet %s below the low-balance threshold: parent told (%s)",
                     row.wallet_id, "email queued" if queued else "no email today")
    return len(crossed)
