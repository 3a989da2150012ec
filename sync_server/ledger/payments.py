"""The payment lifecycle (spec v1.1): gateway events in any order, any number of times.

A payment is the gateway's ``reference``; its events move it ``pending -> completed | failed``,
then possibly ``refunded`` or ``charged_back``. Every event is stored once under its
``event_id`` (the idempotency rule of :mod:`.idempotency`), and only what can be applied
safely moves money:

- a reference is credited at most once, and refunds plus chargebacks never take back more
  than was credited (the ``payments`` row counts both; a CHECK constraint backs it);
- what cannot be applied safely (a completion after a failure, an unknown wallet, another
  currency, an empty reference, an amount above the configured ceiling, a refund of money
  never credited) is *held*: stored with the reason, answered 202 so the gateway stops
  retrying, and left for an admin to credit to the right wallet or mark for refund, once.

Lock order, as everywhere in the ledger: the payment row, then the wallet, then the school
row. The event row is inserted before any money moves; two deliveries of one event racing
on two processes collide on its primary key and the loser replays the winner's outcome.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow
from shared.ids import new_id
from shared.protocol import PaymentEvent, canonical_time

from ..notify.producers import payment_credited
from ..storage.schema import payment_conflicts, payment_events, payments, schools, wallets
from . import bounds
from .accounts import TOPUP_CLEARING
from .idempotency import Verdict, fingerprint, retrying, verdict
from .money_ops import AfterHook, MoneyOp, OpenTransaction, OpOutcome, OpRefused, run
from .postings import lock_wallets
from .transfers import move

CREDITED = ("completed", "refunded", "charged_back")
OPEN = (None, "pending")  # states in which a completion may still credit

HOLD_WORDS = {
    "empty_reference": "the event has no payment reference",
    "wallet_unknown": "no wallet with this ID exists",
    "currency_mismatch": "the currency is not the school's currency",
    "currency_changed": "the currency differs from the payment's earlier events",
    "wallet_changed": "the event names another wallet than the payment's first event",
    "amount_changed": "the amount differs from the payment's earlier events",
    "amount_above_limit": "the amount is above the server's ceiling for one top-up",
    "completed_after_failed": "the payment was reported failed before this completion",
    "failed_after_completed": "the payment was reported failed after it was credited",
    "payment_held": "the payment is already waiting for an admin's decision",
    "refund_without_credit": "nothing was credited for this payment, so nothing can be refunded",
    "refund_exceeds_credit": "this would take back more than the payment credited",
    bounds.CODE: bounds.WORDS,
}


@dataclass(frozen=True, slots=True)
class Policy:
    """The server's configuration as the payment rules need it."""

    hold_above: int | None = None             # credits above this are held (minor units)
    check_pending_after: timedelta = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class EventOutcome:
    event_id: str
    status: str                  # credited|debited|recorded|held|conflict|rejected (v1 rows)
    code: str | None = None      # the hold reason, or a lifecycle note
    flags: list[str] = field(default_factory=list)
    balance_after: int | None = None
    payment_id: str | None = None
    replay: bool = False


@dataclass(frozen=True, slots=True)
class PaymentView:
    """What the rules read of a payment that already has events."""

    state: str
    wallet_id: str
    currency: str
    amount: int
    credited: int
    debited: int


@dataclass(frozen=True, slots=True)
class WalletView:
    known: bool
    currency: str | None = None   # its school's
    status: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    action: str                  # credit|debit|record|hold
    code: str | None = None
    state: str | None = None     # the payment's new state; None: unchanged
    flags: tuple[str, ...] = ()


def event_hash(event: PaymentEvent) -> str:
    """'Same body' compares the parsed event, not bytes, key order or time offsets."""
    data = event.model_dump(mode="json")
    data["created_at"] = canonical_time(event.created_at)
    return fingerprint(data)


def decide(event: PaymentEvent, payment: PaymentView | None, wallet: WalletView,
           hold_above: int | None) -> Decision:
    """The lifecycle's rules, free of I/O so they can be read (and tested) in one place."""
    kind = event.event_type
    state = payment.state if payment else None
    if kind == "payment.pending":
        if state is None:
            return Decision("record", state="pending")
        return Decision("record", code=None if state == "pending" else "late_pending")
    if kind == "payment.failed":
        if state in OPEN:
            return Decision("record", state="failed")
        if state in CREDITED:
            return Decision("hold", "failed_after_completed")
        return Decision("record", code="late_failed")
    if kind == "refund.failed":
        return Decision("record", flags=("refund_failed",))
    if kind == "payment.completed":
        return _completion(event, payment, wallet, hold_above)
    return _take_back(event, payment)  # refund.completed, chargeback.created


def _completion(event: PaymentEvent, payment: PaymentView | None, wallet: WalletView,
                hold_above: int | None) -> Decision:
    state = payment.state if payment else None
    hold_state = "held" if state in OPEN else None

    def hold(code: str, new_state: str | None = hold_state) -> Decision:
        return Decision("hold", code, state=new_state)

    if not event.reference:
        return hold("empty_reference")
    if not wallet.known:
        return hold("wallet_unknown")
    if event.currency != wallet.currency:
        return hold("currency_mismatch")
    if payment is not None:
        if payment.wallet_id != event.wallet_id:
            return hold("wallet_changed")
        if payment.currency != event.currency:  # what is credited is what refunds compare with
            return hold("currency_changed")
        if state in CREDITED:
            if payment.credited == event.amount:
                return Decision("record", code="already_credited")
            return hold("amount_changed")
        if state == "failed":
            return hold("completed_after_failed", "held")
        if state in ("held", "refund_requested"):
            return hold("payment_held")
        if payment.amount != event.amount:
            return hold("amount_changed")
    if hold_above is not None and event.amount > hold_above:
        return hold("amount_above_limit")
    flags = () if wallet.status == "active" else (f"wallet_{wallet.status}",)
    return Decision("credit", state="completed", flags=flags)


def _take_back(event: PaymentEvent, payment: PaymentView | None) -> Decision:
    chargeback = event.event_type == "chargeback.created"
    if payment is None or payment.credited == 0:
        return Decision("hold", "refund_without_credit", state="held" if payment is None else None)
    if payment.wallet_id != event.wallet_id:
        return Decision("hold", "wallet_changed")
    if payment.currency != event.currency:
        return Decision("hold", "currency_mismatch")
    left = payment.credited - payment.debited
    if event.amount > left:
        return Decision("hold", "refund_exceeds_credit")
    if chargeback:
        return Decision("debit", state="charged_back", flags=("chargeback",))
    return Decision("debit", state="refunded" if event.amount == left else payment.state)


def _within_bounds(decision: Decision, event: PaymentEvent, balance: int,
                   payment: PaymentView | None) -> Decision:
    """A credit or debit that would take the wallet past the server's bounds is held."""
    delta = event.amount if decision.action == "credit" else -event.amount
    if bounds.balance_holds(balance + delta):
        return decision
    opened = decision.action == "credit" and (payment is None or payment.state in OPEN)
    return Decision("hold", bounds.CODE, state="held" if opened else None)


async def apply_event(open_tx: OpenTransaction, event: PaymentEvent, *, source: str,
                      policy: Policy) -> EventOutcome:
    """Apply one gateway event (a webhook delivery or a reconciliation answer) exactly once."""
    digest = event_hash(event)

    async def attempt() -> EventOutcome:
        async with open_tx() as conn:
            prior = (await conn.execute(sa.select(payment_events).where(
                payment_events.c.event_id == event.event_id))).first()
            kept: set[str] = set()
            if prior is not None:
                kept = set((await conn.execute(
                    sa.select(payment_conflicts.c.content_hash)
                    .where(payment_conflicts.c.event_id == event.event_id))).scalars())
            match verdict(prior.content_hash if prior else None, digest, kept):
                case Verdict.REPLAY:
                    assert prior is not None
                    return stored_outcome(prior, replay=True)
                case Verdict.CONFLICT:
                    assert prior is not None
                    await conn.execute(sa.insert(payment_conflicts).values(
                        event_id=event.event_id, school_id=prior.school_id,
                        content_hash=digest, payload=event.model_dump(mode="json"),
                        received_at=utcnow()))
                    return EventOutcome(event.event_id, "conflict")
                case Verdict.CONFLICT_REPLAY:
                    return EventOutcome(event.event_id, "conflict", replay=True)
                case Verdict.FIRST:
                    return await _first(conn, event, digest, source, policy)

    return await retrying(attempt, what=f"payment event {event.event_id}")


def stored_outcome(row: Any, *, replay: bool) -> EventOutcome:
    return EventOutcome(row.event_id, row.status, row.code, list(row.flags or []),
                        row.balance_after, row.payment_id, replay)


async def _lock_payment(conn: AsyncConnection, reference: str) -> Any:
    if not reference:
        return None  # no reference, nothing to tie it to: a payment of its own
    return (await conn.execute(
        sa.select(payments).where(payments.c.reference == reference).with_for_update())).first()


async def _wallet_view(conn: AsyncConnection, wallet_id: str) -> tuple[WalletView, str | None]:
    row = (await conn.execute(
        sa.select(wallets.c.school_id, wallets.c.status, schools.c.currency)
        .join(schools, schools.c.school_id == wallets.c.school_id)
        .where(wallets.c.wallet_id == wallet_id))).first()
    if row is None:
        return WalletView(False), None
    return WalletView(True, row.currency, row.status), str(row.school_id)


async def _first(conn: AsyncConnection, event: PaymentEvent, digest: str, source: str,
                 policy: Policy) -> EventOutcome:
    now = utcnow()
    payment = await _lock_payment(conn, event.reference)
    wallet, school_id = await _wallet_view(conn, event.wallet_id)
    view = None if payment is None else PaymentView(
        payment.state, payment.wallet_id, payment.currency, int(payment.amount),
        int(payment.credited), int(payment.debited))
    decision = decide(event, view, wallet, policy.hold_above)
    balance = None
    if decision.action in ("credit", "debit") and school_id is not None:
        # Locked now (payment, then wallet: the ledger's order), so the event row below can
        # be written once with its final outcome; the posting follows under the same locks.
        locked = await lock_wallets(conn, str(school_id), [event.wallet_id])
        balance = int(locked[event.wallet_id].balance)
        decision = _within_bounds(decision, event, balance, view)
    payment_id = payment.payment_id if payment is not None else new_id("pay")
    # The payment's school is its wallet's; events of a payment of one school stay there.
    event_school = payment.school_id if payment is not None and payment.school_id else school_id
    status = {"credit": "credited", "debit": "debited", "record": "recorded",
              "hold": "held"}[decision.action]
    flags = list(decision.flags)
    state = decision.state or (payment.state if payment is not None else "held")
    credited = int(payment.credited) if payment is not None else 0
    debited = int(payment.debited) if payment is not None else 0
    credit_txn = payment.credit_txn_id if payment is not None else None
    balance_after = txn_id = None
    moves = decision.action in ("credit", "debit") and school_id is not None
    if moves:
        assert balance is not None  # locked above
        delta = event.amount if decision.action == "credit" else -event.amount
        balance_after, txn_id = balance + delta, new_id("pst")
        if delta < 0 and balance_after < 0:
            flags.insert(0, "overdraft")
        if delta > 0:
            credited, credit_txn = credited + event.amount, txn_id
        else:
            debited += event.amount
    # The key row first: a racing duplicate delivery fails here, before any money moves.
    await conn.execute(sa.insert(payment_events).values(
        event_id=event.event_id, school_id=event_school, event_type=event.event_type,
        wallet_id=event.wallet_id, amount=event.amount, currency=event.currency,
        reference=event.reference, created_at=event.created_at, received_at=now,
        status=status, code=decision.code, flags=flags, balance_after=balance_after,
        txn_id=txn_id, content_hash=digest, payload=event.model_dump(mode="json"),
        payment_id=payment_id, source=source))
    values: dict[str, Any] = {
        "state": state, "credited": credited, "debited": debited, "credit_txn_id": credit_txn,
        "updated_at": now}
    if decision.state is not None:
        values["next_check_at"] = (now + policy.check_pending_after
                                   if decision.state == "pending" else None)
        values["hold_reason"] = decision.code if decision.state == "held" else None
    if payment is None:
        await conn.execute(sa.insert(payments).values(
            payment_id=payment_id, school_id=school_id, reference=event.reference,
            wallet_id=event.wallet_id, currency=event.currency, amount=event.amount,
            created_at=now, **{"next_check_at": None, "hold_reason": None, **values}))
    else:
        await conn.execute(sa.update(payments).where(payments.c.payment_id == payment_id)
                           .values(**values))
    if moves:
        transfer = await move(
            conn, school_id=str(school_id), wallet_id=event.wallet_id,
            amount=event.amount if decision.action == "credit" else -event.amount,
            counter_kind=TOPUP_CLEARING,
            kind="topup" if decision.action == "credit" else
            ("chargeback" if event.event_type == "chargeback.created" else "refund"),
            memo=f"gateway {event.event_type} {event.reference}"[:500],
            actor="payment-gateway" if source == "webhook" else source,
            occurred_at=event.created_at, posting_id=txn_id)
        assert transfer.balance_after == balance_after
        if decision.action == "credit":
            assert txn_id is not None
            await payment_credited(
                conn, school_id=str(school_id), payment_id=payment_id,
                reference=event.reference, wallet_id=event.wallet_id, amount=event.amount,
                currency=event.currency, balance_after=balance_after, posting_id=txn_id)
    return EventOutcome(event.event_id, status, decision.code, flags, balance_after,
                        payment_id, replay=False)


# ---------------------------------------------------------------- an admin settles a hold


async def _held_event(conn: AsyncConnection, event_id: str, school_id: str) -> Any:
    """The held, unsettled event, locked with its payment (payment row first), visible to
    this school (its own, or one no school could be found for)."""
    row = (await conn.execute(sa.select(payment_events.c.payment_id).where(
        payment_events.c.event_id == event_id))).first()
    if row is None:
        raise OpRefused("event_unknown", "no such payment event")
    if row.payment_id is not None:
        await conn.execute(sa.select(payments.c.payment_id)
                           .where(payments.c.payment_id == row.payment_id).with_for_update())
    event = (await conn.execute(sa.select(payment_events).where(
        payment_events.c.event_id == event_id))).one()
    if event.school_id not in (None, school_id):
        raise OpRefused("event_unknown", "no such payment event")
    if event.status != "held":
        raise OpRefused("not_held", "this event is not held for review")
    if event.resolution is not None:
        raise OpRefused("already_settled", f"this event was already settled "
                                           f"({event.resolution.replace('_', ' ')})")
    return event


async def credit_held(open_tx: OpenTransaction, *, school_id: str, event_id: str,
                      wallet_id: str, idem_key: str, actor: str, reason: str,
                      after: AfterHook | None = None) -> OpOutcome:
    """Credit a held ``payment.completed`` to a wallet of ``school_id`` chosen by an admin.
    Once: the event is settled in the same transaction, and a second click replays."""

    async def before(conn: AsyncConnection) -> None:
        event = await _held_event(conn, event_id, school_id)
        if event.event_type != "payment.completed":
            raise OpRefused("not_a_credit", "only a held payment.completed can be credited")
        currency = (await conn.execute(sa.select(schools.c.currency).where(
            schools.c.school_id == school_id))).scalar_one()
        if currency != event.currency:
            raise OpRefused("currency_mismatch",
                            f"the payment is in {event.currency}, the school uses {currency}")
        if event.payment_id is not None:
            payment = (await conn.execute(sa.select(payments).where(
                payments.c.payment_id == event.payment_id))).one()
            if int(payment.credited):
                raise OpRefused("already_credited", "this payment was already credited")
            if payment.state == "refund_requested":
                raise OpRefused("refund_requested", "this payment was marked for refund by "
                                                    "the gateway; it cannot be credited too")

    async def settle(conn: AsyncConnection, outcome: OpOutcome) -> None:
        now = utcnow()
        event = (await conn.execute(sa.select(payment_events).where(
            payment_events.c.event_id == event_id))).one()
        await conn.execute(sa.update(payment_events)
                           .where(payment_events.c.event_id == event_id)
                           .values(resolution="credited", school_id=school_id,
                                   reviewed_at=now, reviewed_by=actor, review_note=reason))
        if event.payment_id is not None:
            await conn.execute(sa.update(payments)
                               .where(payments.c.payment_id == event.payment_id)
                               .values(state="completed", school_id=school_id,
                                       wallet_id=wallet_id, currency=event.currency,
                                       hold_reason=None,
                                       credited=payments.c.credited + outcome.amount,
                                       credit_txn_id=outcome.posting_id, updated_at=now,
                                       next_check_at=None))
        await payment_credited(
            conn, school_id=school_id, payment_id=event.payment_id or event_id,
            reference=event.reference, wallet_id=wallet_id, amount=outcome.amount,
            currency=event.currency, balance_after=outcome.balance_after,
            posting_id=outcome.posting_id)
        if after is not None:
            await after(conn, outcome)

    amount = await _event_amount(open_tx, event_id)
    return await run(open_tx, MoneyOp(
        school_id=school_id, kind="payment_credit", wallet_id=wallet_id, amount=amount,
        idem_key=idem_key, actor=actor, reason=reason, payment_event_id=event_id),
        before=before, after=settle)


async def _event_amount(open_tx: OpenTransaction, event_id: str) -> int:
    async with open_tx() as conn:
        amount = (await conn.execute(sa.select(payment_events.c.amount).where(
            payment_events.c.event_id == event_id))).scalar_one_or_none()
    if amount is None:
        raise OpRefused("event_unknown", "no such payment event")
    return int(amount)


async def mark_for_refund(open_tx: OpenTransaction, *, school_id: str, event_id: str,
                          actor: str, reason: str,
                          after: Callable[[AsyncConnection], Awaitable[None]] | None = None,
                          ) -> bool:
    """Settle a held event by asking the gateway to give the money back: no ledger effect.
    Returns False when it was already marked so (a second click changes nothing)."""
    async def attempt() -> bool:
        async with open_tx() as conn:
            try:
                event = await _held_event(conn, event_id, school_id)
            except OpRefused as exc:
                if exc.code == "already_settled":
                    resolution = (await conn.execute(sa.select(payment_events.c.resolution)
                                  .where(payment_events.c.event_id == event_id))).scalar_one()
                    if resolution == "refund_requested":
                        return False
                raise
            now = utcnow()
            await conn.execute(sa.update(payment_events)
                               .where(payment_events.c.event_id == event_id)
                               .values(resolution="refund_requested",
                                       school_id=event.school_id or school_id,
                                       reviewed_at=now, reviewed_by=actor, review_note=reason))
            if event.payment_id is not None:
                await conn.execute(
                    sa.update(payments)
                    .where(payments.c.payment_id == event.payment_id,
                           payments.c.credited == 0)
                    .values(state="refund_requested", updated_at=now, next_check_at=None,
                            school_id=sa.func.coalesce(payments.c.school_id, school_id)))
            if after is not None:
                await after(conn)
            return True

    return await retrying(attempt, what=f"refund request for {event_id}")

