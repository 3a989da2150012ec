"""The wallet lock, for writers that change a wallet's record but move no money.

Editing a wallet (name, limit, status) or its restrictions bumps the wallet's version, and
sales batches of the same school bump versions while holding the wallets' locks. Taking the
same lock first, in the order every batch takes it (wallet, then school), keeps those versions
in commit order and the two from deadlocking. This is the only way code outside the ledger
may take it: the low-level :func:`.postings.lock_wallets` stays the ledger's own, so "money
moves only in ``ledger/``" can be checked by looking for its callers.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from .postings import lock_wallets


async def hold_wallet(conn: AsyncConnection, school_id: str, wallet_id: str) -> bool:
    """Lock the wallet until the caller's transaction ends; False when the school has no
    such wallet (nothing is locked then)."""
    return bool(await lock_wallets(conn, school_id, [wallet_id]))
