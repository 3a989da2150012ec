"""Money that moves outside sales: top-ups, refunds, admin adjustments and reversals.

Each is one balanced transaction under the wallet's lock, with the wallet stamped so the next
snapshot delta carries the new balance to every terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow
from shared.ids import new_id

from ..storage.schema import wallets
from . import versions
from .accounts import system_account
from .postings import Txn, lock_wallets, post


class WalletNotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Transfer:
    txn_id: str
    balance_after: int


async def move(conn: AsyncConnection, *, school_id: str, wallet_id: str, amount: int,
               counter_kind: str, kind: str, memo: str | None = None, actor: str | None = None,
               occurred_at: datetime | None = None, sale_ref: str | None = None) -> Transfer:
    """Credit (``amount`` > 0) or debit (< 0) a wallet against a system account.

    Runs inside the caller's transaction, so callers can record their own rows (a webhook
    event, an audit entry) atomically with the money.
    """
    locked = await lock_wallets(conn, school_id, [wallet_id])
    if wallet_id not in locked:
        raise WalletNotFound(wallet_id)
    now = utcnow()
    txn = Txn(txn_id=new_id("txn"), school_id=school_id, kind=kind,
              occurred_at=occurred_at or now, posted_at=now, memo=memo, actor=actor,
              sale_ref=sale_ref,
              entries=[(wallet_id, amount), (system_account(school_id, counter_kind), -amount)])
    await post(conn, [txn], {wallet_id})
    version = await versions.bump(conn, school_id)
    await versions.stamp(conn, wallets, wallets.c.wallet_id, [wallet_id], version)
    return Transfer(txn.txn_id, int(locked[wallet_id].balance) + amount)
