"""The posting primitive of money that moves outside sales, for the ledger's own modules.

Top-ups, refunds, chargebacks, admin adjustments and reversals each post one balanced
transaction under the wallet's lock, with the wallet stamped so the next snapshot delta carries
the new balance to every terminal. Only :mod:`.money_ops` and :mod:`.payments` call it: they
record the business event the posting belongs to in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow
from shared.ids import new_id

from . import versions
from .accounts import system_account
from .postings import Posting, lock_wallets, post


class WalletNotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Transfer:
    txn_id: str  # the posting's ID
    balance_after: int


async def move(conn: AsyncConnection, *, school_id: str, wallet_id: str, amount: int,
               counter_kind: str, kind: str, memo: str | None = None, actor: str | None = None,
               occurred_at: datetime | None = None, sale_ref: str | None = None,
               posting_id: str | None = None) -> Transfer:
    """Credit (``amount`` > 0) or debit (< 0) a wallet against a system account.

    Runs inside the caller's transaction, so callers can record their own rows (a webhook
    event, an audit entry) atomically with the money.
    """
    locked = await lock_wallets(conn, school_id, [wallet_id])
    if wallet_id not in locked:
        raise WalletNotFound(wallet_id)
    if amount == 0:
        raise ValueError("a transfer moves a non-zero amount")
    now = utcnow()
    counter = system_account(school_id, counter_kind)
    posting = Posting(
        posting_id=posting_id or new_id("pst"), school_id=school_id, kind=kind,
        from_account=counter if amount > 0 else wallet_id,
        to_account=wallet_id if amount > 0 else counter, amount=abs(amount),
        occurred_at=occurred_at or now, posted_at=now, sale_ref=sale_ref, memo=memo,
        actor=actor)
    # Wallet locked above, school row now: the lock order of every sales push.
    version = await versions.bump(conn, school_id)
    await post(conn, [posting], {wallet_id}, version)
    return Transfer(posting.posting_id, int(locked[wallet_id].balance) + amount)
