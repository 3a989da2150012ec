"""Money that a person moves: manual top-ups and adjustments, reversals, held payments credited.

Each operation is one business event (a ``money_ops`` row) with one posting, applied under the
ledger's idempotency rule (:mod:`.idempotency`) with the admin form's ``idem_key`` as the key:
a double click, a browser re-posting the form, or two admins pressing the same button replay
the first outcome instead of moving the money twice. A reversal also writes the sale's
``sale_refunds`` row, whose primary key refuses a second refund of the sale whether the
other one is a terminal void or another reversal.

Callers (the admin console, the CLI, demo seeding) pass a way to open a write transaction and,
optionally, a hook that writes their own rows (the audit log) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow
from shared.ids import new_id

from ..mail import low_balance
from ..reports import rollup_writes
from ..storage.schema import money_ops, sale_refunds, sales
from . import bounds
from .accounts import ADJUSTMENTS, REVENUE, TOPUP_CLEARING
from .idempotency import Verdict, fingerprint, retrying, verdict
from .postings import lock_wallets
from .transfers import move

OpenTransaction = Callable[[], AbstractAsyncContextManager[AsyncConnection]]

# Which system account each kind moves money against. A ``refund`` gives a leaver's money
# back (it leaves the school the way top-ups came in); a ``transfer`` is one half of a move
# between two wallets (a leaver's balance to a sibling, :mod:`.leavers`), the pair netting to
# zero on the adjustments account.
COUNTER = {"topup": TOPUP_CLEARING, "adjustment": ADJUSTMENTS, "reversal": REVENUE,
           "payment_credit": TOPUP_CLEARING, "opening": TOPUP_CLEARING,
           "refund": TOPUP_CLEARING, "transfer": ADJUSTMENTS}
# A top-up, a reversal and a credited payment only ever add money to the wallet.
CREDIT_ONLY = ("topup", "reversal", "payment_credit", "opening")
DEBIT_ONLY = ("refund",)


class OpRefused(Exception):
    """The operation cannot be applied; nothing moved. ``code`` is stable, ``words`` are
    for the person who asked."""

    def __init__(self, code: str, words: str) -> None:
        super().__init__(words)
        self.code, self.words = code, words


@dataclass(frozen=True, slots=True)
class MoneyOp:
    school_id: str
    kind: str                      # a key of COUNTER
    wallet_id: str
    amount: int                    # signed, as seen from the wallet; reversals: the sale's
    idem_key: str
    actor: str | None
    reason: str | None = None
    sale_ref: str | None = None    # reversal
    payment_event_id: str | None = None  # payment_credit

    def digest(self) -> str:
        return fingerprint({k: v for k, v in asdict(self).items() if k != "idem_key"})


@dataclass(frozen=True, slots=True)
class OpOutcome:
    op_id: str
    posting_id: str
    amount: int
    balance_before: int | None
    balance_after: int | None
    replay: bool


AfterHook = Callable[[AsyncConnection, OpOutcome], Awaitable[None]]
# Run first in the operation's transaction, before the wallet is locked, for the caller's own
# checks and locks (a held payment's); raising OpRefused there refuses the whole operation.
BeforeHook = Callable[[AsyncConnection], Awaitable[None]]


async def run(open_tx: OpenTransaction, op: MoneyOp, *, before: BeforeHook | None = None,
              after: AfterHook | None = None) -> OpOutcome:
    """Apply ``op`` once, in a transaction of its own, retried on a lost race. A replay of
    its key answers the first outcome (``replay=True``) and runs no hook; the same key with
    other content is refused (``key_reused``)."""
    async def attempt() -> OpOutcome:
        async with open_tx() as conn:
            return await apply_in(conn, op, before=before, after=after)

    return await retrying(attempt, what=f"{op.kind} on {op.wallet_id}")


async def apply_in(conn: AsyncConnection, op: MoneyOp, *, before: BeforeHook | None = None,
                   after: AfterHook | None = None) -> OpOutcome:
    """:func:`run` inside the caller's transaction (seeding, a restore): no retry."""
    if op.kind not in COUNTER:
        raise ValueError(f"unknown money operation {op.kind!r}")
    if op.amount == 0 and op.kind != "reversal":
        raise OpRefused("zero_amount", "the amount must not be zero")
    if op.kind in CREDIT_ONLY and op.amount < 0:
        raise OpRefused("negative_credit", f"a {op.kind} only adds money")
    if op.kind in DEBIT_ONLY and op.amount > 0:
        raise OpRefused("positive_debit", f"a {op.kind} only takes money off")
    digest = op.digest()
    if (replay := await _replay(conn, op, digest)) is not None:
        return replay
    outcome = await _apply(conn, op, digest, before)
    if outcome.replay:
        return outcome
    if after is not None:
        await after(conn, outcome)
    return outcome


async def _replay(conn: AsyncConnection, op: MoneyOp, digest: str) -> OpOutcome | None:
    """The stored outcome of ``op``'s key (None: the key is new); other content under the
    key is refused."""
    stored = (await conn.execute(sa.select(money_ops).where(
        money_ops.c.school_id == op.school_id, money_ops.c.idem_key == op.idem_key))).first()
    match verdict(stored.content_hash if stored else None, digest, ()):
        case Verdict.REPLAY:
            assert stored is not None
            return OpOutcome(stored.op_id, stored.posting_id, int(stored.amount), None,
                             stored.balance_after, replay=True)
        case Verdict.CONFLICT | Verdict.CONFLICT_REPLAY:
            raise OpRefused("key_reused", "this form was already used for another operation; "
                                          "reload the page and try again")
        case Verdict.FIRST:
            return None


async def _apply(conn: AsyncConnection, op: MoneyOp, digest: str,
                 before: BeforeHook | None) -> OpOutcome:
    """Lock, look at the key again, check, write. A twin of this operation (a double click)
    may have committed while this one waited for the locks: it is then a replay, not a
    business refusal such as "already reversed"."""
    try:
        if before is not None:  # first: it may lock rows that come before wallets in order
            await before(conn)
    except OpRefused:
        if (replay := await _replay(conn, op, digest)) is not None:
            return replay
        raise
    locked = await lock_wallets(conn, op.school_id, [op.wallet_id])
    if op.wallet_id not in locked:
        raise OpRefused("wallet_unknown", "no such wallet in this school")
    if (replay := await _replay(conn, op, digest)) is not None:
        return replay
    amount = op.amount
    if op.kind == "reversal":
        amount = await _reversible_total(conn, op)
    op_id, posting_id, now = new_id("op"), new_id("pst"), utcnow()
    balance_before = int(locked[op.wallet_id].balance)
    if not bounds.balance_holds(balance_before + amount):
        raise OpRefused(bounds.CODE, bounds.WORDS)
    # The key row before the money: a racing twin fails here, before any posting.
    await conn.execute(sa.insert(money_ops).values(
        op_id=op_id, school_id=op.school_id, idem_key=op.idem_key, content_hash=digest,
        kind=op.kind, wallet_id=op.wallet_id, amount=amount, posting_id=posting_id,
        balance_after=balance_before + amount, sale_ref=op.sale_ref,
        payment_event_id=op.payment_event_id, reason=(op.reason or "")[:500] or None,
        actor=op.actor, created_at=now))
    if op.kind == "reversal":
        await conn.execute(sa.insert(sale_refunds).values(
            school_id=op.school_id, sale_ref=op.sale_ref, kind="reversal", op_id=op_id,
            amount=amount, refunded_at=now))
        await rollup_writes.sale_reversed(conn, op.school_id, str(op.sale_ref), now)
    transfer = await move(
        conn, school_id=op.school_id, wallet_id=op.wallet_id, amount=amount,
        counter_kind=COUNTER[op.kind], kind=op.kind, memo=_memo(op), actor=op.actor,
        sale_ref=op.sale_ref, posting_id=posting_id)
    assert transfer.balance_after == balance_before + amount
    if amount < 0:  # a debit may take the wallet below the school's low-balance threshold
        await low_balance.tell(conn, op.school_id, {op.wallet_id: balance_before},
                               {op.wallet_id: transfer.balance_after}, now)
    return OpOutcome(op_id, posting_id, amount, balance_before, transfer.balance_after,
                     replay=False)


async def _reversible_total(conn: AsyncConnection, op: MoneyOp) -> int:
    """The sale's total, read under its wallet's lock: a void of it committing meanwhile is
    seen here (and the refund link's key refuses the rest)."""
    row = (await conn.execute(
        sa.select(sales.c.kind, sales.c.status, sales.c.total, sales.c.wallet_id,
                  sale_refunds.c.kind.label("refunded"))
        .select_from(sales.outerjoin(sale_refunds, sa.and_(
            sale_refunds.c.school_id == sales.c.school_id,
            sale_refunds.c.sale_ref == sales.c.ref)))
        .where(sales.c.school_id == op.school_id, sales.c.ref == op.sale_ref))).first()
    if row is None or row.wallet_id != op.wallet_id:
        raise OpRefused("sale_unknown", "no such sale on this wallet")
    if row.refunded is not None:
        done = "voided" if row.refunded == "void" else "reversed"
        raise OpRefused("already_refunded", f"it was already {done}")
    if row.kind != "sale" or row.status != "applied":
        raise OpRefused("not_reversible", "only applied sales can be reversed")
    if int(row.total) == 0:
        raise OpRefused("zero_amount", "the sale's total is zero: nothing to give back")
    return int(row.total)


def _memo(op: MoneyOp) -> str:
    what = {"topup": "manual top-up", "adjustment": "manual adjustment",
            "reversal": f"reversal of sale {op.sale_ref}",
            "payment_credit": f"held payment {op.payment_event_id} credited",
            "opening": "opening balance", "refund": "balance refunded",
            "transfer": "transfer between wallets"}[op.kind]
    return f"{what}: {op.reason}"[:500] if op.reason else what


def describe(outcome: OpOutcome) -> dict[str, Any]:
    """The outcome as an audit row's ``after``."""
    return {"balance": outcome.balance_after, "amount": outcome.amount,
            "txn_id": outcome.posting_id, "op_id": outcome.op_id}
