"""What else a push's applied sales change, in the same transaction as the sales themselves.

The ledger's own rows (sales, postings, balances) are written by :mod:`.sales`; this module
is the one place where derived rows join them: report rollups, and the outboxes that tell
parents and a school's systems (low-balance email and webhook, ``sale.applied``). Written in
the push's transaction, each exists exactly when its sale does: a crash cannot leave a sale
without its rollup row or a told event without its sale. Each part must stay cheap (it runs
on every push) and must not fail a sale for a reason of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from ..mail import low_balance
from ..notify.producers import sales_applied
from ..reports import rollup_writes
from .judge import BatchEffects, NewSale


@dataclass(frozen=True, slots=True)
class AppliedPush:
    """A push's outcome as the derived rows need it."""

    school_id: str
    device_id: str
    applied: list[NewSale]            # sales and voids with a posting, in batch order
    balances_before: dict[str, int]   # wallet -> balance when the push locked it
    now: datetime
    # Every sale and void recorded applied, a total of 0 (no posting) included: what sold.
    recorded: list[NewSale] = field(default_factory=list)
    low_balance_threshold: int | None = None  # the school's, read with its other settings
    zone: ZoneInfo | None = None  # the school's time zone, read with them (None: read it)


def applied_of(fx: BatchEffects) -> list[NewSale]:
    return [new for new in fx.new_sales.values() if new.posted]


def recorded_of(fx: BatchEffects) -> list[NewSale]:
    return [new for new in fx.new_sales.values() if new.status == "applied"]


async def after_write(conn: AsyncConnection, push: AppliedPush) -> None:
    """Called by :func:`sync_server.ledger.sales._apply_once` after the push's rows are
    written, before its commit. Each feature adds its own call here."""
    await rollup_writes.sales_recorded(conn, push.school_id, push.recorded, push.zone)
    if not push.applied:
        return
    await sales_applied(conn, school_id=push.school_id, device_id=push.device_id,
                        sales=push.applied)
    if push.low_balance_threshold is not None:
        await low_balance.after_sales(conn, push.school_id, push.applied,
                                      push.balances_before, push.low_balance_threshold,
                                      push.now)
