"""A leaver's balance at year-end: refunded, or moved to a sibling's wallet, exactly once.

Both are money operations (:mod:`.money_ops`), so every posting has its business event and
``audit-ledger`` checks them like any other: a refund is one ``refund`` operation taking the
balance off the wallet against top-up clearing (the money leaves the school as it came in;
the money-flows report lists it as a refund); a transfer is two ``transfer`` operations, off
the leaver and onto the sibling, netting to zero on the adjustments account.

The caller gives a key per (year-end run, wallet). Under the wallets' locks (both, in the
ledger's sorted order) the balance is read and the operations written under that key: a
resubmitted form or a twin request replays the first outcome rather than paying twice. A
negative balance is refused (``negative_balance``): a debt is not written off by a form, a
person settles it first.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..storage.schema import money_ops
from .money_ops import MoneyOp, OpOutcome, OpRefused, apply_in
from .postings import lock_wallets


@dataclass(frozen=True, slots=True)
class Settlement:
    wallet_id: str
    amount: int                  # what left the wallet (0: nothing to move)
    to_wallet: str | None        # the sibling, for a transfer
    op_ids: tuple[str, ...]
    replay: bool


async def settle(conn: AsyncConnection, *, school_id: str, wallet_id: str,
                 sibling_id: str | None, key: str, actor: str | None,
                 reason: str) -> Settlement:
    """Empty ``wallet_id`` in the caller's transaction: refund its balance, or move it to
    ``sibling_id``. OpRefused when a wallet is unknown or the balance is negative."""
    if sibling_id == wallet_id:
        raise OpRefused("same_wallet", "a wallet cannot be its own sibling")
    locked = await lock_wallets(conn, school_id, [wallet_id, *([sibling_id] if sibling_id
                                                               else [])])
    if wallet_id not in locked or (sibling_id is not None and sibling_id not in locked):
        raise OpRefused("wallet_unknown", "no such wallet in this school")
    balance = int(locked[wallet_id].balance)
    if balance < 0:
        raise OpRefused("negative_balance", "the balance is negative: settle the debt first")
    if balance == 0:
        # A replay of a run that already emptied the wallet lands here too: say what it did.
        return await _done_before(conn, school_id, wallet_id, sibling_id, key)
    outcomes = await _apply(conn, school_id, wallet_id, sibling_id, key, actor, reason,
                            balance)
    return Settlement(wallet_id, balance, sibling_id, tuple(o.op_id for o in outcomes),
                      replay=all(o.replay for o in outcomes))


async def _apply(conn: AsyncConnection, school_id: str, wallet_id: str,
                 sibling_id: str | None, key: str, actor: str | None, reason: str,
                 amount: int) -> list[OpOutcome]:
    if sibling_id is None:
        return [await apply_in(conn, MoneyOp(
            school_id=school_id, kind="refund", wallet_id=wallet_id, amount=-amount,
            idem_key=f"{key}:refund", actor=actor, reason=reason))]
    return [await apply_in(conn, MoneyOp(
        school_id=school_id, kind="transfer", wallet_id=wallet_id, amount=-amount,
        idem_key=f"{key}:out", actor=actor, reason=f"to {sibling_id}: {reason}")),
        await apply_in(conn, MoneyOp(
            school_id=school_id, kind="transfer", wallet_id=sibling_id, amount=amount,
            idem_key=f"{key}:in", actor=actor, reason=f"from {wallet_id}: {reason}"))]


async def _done_before(conn: AsyncConnection, school_id: str, wallet_id: str,
                       sibling_id: str | None, key: str) -> Settlement:
    """An empty wallet: nothing to move now. If this key already moved its money (a
    resubmit), report that first outcome as a replay."""
    done = (await conn.execute(sa.select(money_ops.c.op_id, money_ops.c.amount).where(
        money_ops.c.school_id == school_id, money_ops.c.wallet_id == wallet_id,
        money_ops.c.idem_key.in_((f"{key}:refund", f"{key}:out"))))).first()
    if done is None:
        return Settlement(wallet_id, 0, sibling_id, (), replay=False)
    return Settlement(wallet_id, -int(done.amount), sibling_id, (str(done.op_id),),
                      replay=True)
