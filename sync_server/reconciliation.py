"""Payments left ``pending`` are asked about at the gateway, and its answer applied (spec v1.1).

A gateway's webhook can be lost for good (an outage longer than its retries, a misconfigured
secret), which would leave a parent's top-up pending forever. So a job in every server process
looks for payments pending past ``payment_pending_minutes`` (the ledger sets
``payments.next_check_at`` when a payment becomes pending), asks the gateway's status API
(:mod:`.gateway`), and applies a final answer through :func:`.ledger.payments.apply_event`,
the webhook's own path, as an event whose ``event_id`` is ``recon:<payment_id>:<status>``.
The ledger's rules therefore hold here as for a webhook: a reference is credited at most once
whichever arrives first, and an answer with another amount is held (``amount_changed``).

All of the job's state is in the ``payments`` row, so it survives restarts and works with any
number of processes and hosts on one database:

- a payment is *claimed* by a conditional UPDATE that sets ``lease_until`` only while no live
  lease is held (checked by its rowcount); PostgreSQL re-evaluates the condition after a
  concurrent claim commits, SQLite runs writers one at a time, so exactly one claim wins;
- the gateway is asked outside any transaction; each database transaction is a few
  statements;
- an answer that is not final (still pending, unknown reference, 5xx, timeout, network error,
  unreadable body) reschedules with exponential backoff and jitter (``check_attempts``,
  ``next_check_at``, ``last_check_error``), without limit: the payment stays visible to admins
  as pending, with the reason of the last failed check;
- a process that dies holding a lease loses it when ``lease_until`` passes; the next check is
  then a replay at worst, because the event's ID depends only on the payment and the answer.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from aiohttp import web
from pydantic import ValidationError

from shared.clock import utcnow
from shared.protocol import PaymentEvent

from .gateway import GatewayAnswer, GatewayStatus, GatewayUnavailable, HttpGatewayStatus
from .keys import config_key
from .ledger.money_ops import OpenTransaction
from .ledger.payments import EventOutcome, Policy, apply_event
from .storage.schema import payments
from .transactions import writing

log = logging.getLogger(__name__)

SOURCE = "reconciliation"
# Longer than any one check (the gateway client's timeouts, then one short transaction), so
# a lease only expires under a process that died or hung.
LEASE = timedelta(minutes=2)
INTERVAL_SECONDS = 30.0  # between looks for due payments
PARALLEL = 4  # payments claimed and asked about at once, per process
ERROR_LENGTH = 200  # payments.last_check_error

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before the next check: doubling from ``first`` up to ``longest``, half of it
    random ("equal jitter"), so payments that failed together are not retried together."""

    first: timedelta = timedelta(minutes=1)
    longest: timedelta = timedelta(hours=6)

    def delay(self, earlier_checks: int, rand: float) -> timedelta:
        full = min(self.longest, self.first * (1 << min(earlier_checks, 30)))
        return full / 2 + full / 2 * rand


@dataclass(frozen=True, slots=True)
class Claim:
    """A payment this process holds the lease of, as the check needs it."""

    payment_id: str
    reference: str
    wallet_id: str
    earlier_checks: int
    lease_until: datetime  # also the lease's identity: released only if still ours


def event_of(claim: Claim, answer: GatewayAnswer) -> PaymentEvent:
    """The gateway's final answer as the webhook event it stands for. Its ID is derived from
    the payment and the status only, so a second look-up that gets the same answer replays."""
    return PaymentEvent(
        event_id=f"recon:{claim.payment_id}:{answer.status}",
        event_type=f"payment.{answer.status}", reference=claim.reference,
        wallet_id=answer.wallet_id or claim.wallet_id, amount=answer.amount,
        currency=answer.currency, created_at=answer.updated_at)


def _one_line(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"[:ERROR_LENGTH]


class Reconciliation:
    """The job: :meth:`run_once` checks what is due now, :meth:`run_forever` keeps doing it."""

    def __init__(self, open_tx: OpenTransaction, gateway: GatewayStatus, policy: Policy, *,
                 clock: Clock = utcnow, backoff: Backoff = Backoff(), lease: timedelta = LEASE,
                 parallel: int = PARALLEL, rand: Callable[[], float] = random.random) -> None:
        self._open_tx, self._gateway, self._policy = open_tx, gateway, policy
        self._clock, self._backoff, self._lease = clock, backoff, lease
        self._parallel, self._rand = parallel, rand

    async def run_forever(self, interval: float = INTERVAL_SECONDS) -> None:
        """Until cancelled. A failure (the database down, a bug) costs one log line and one
        interval, never the loop."""
        while True:
            try:
                await self.run_once()
            except Exception as exc:
                log.warning("payment reconciliation failed, trying again in %.0f s: %s",
                            interval, _one_line(exc))
            await asyncio.sleep(interval)

    async def run_once(self) -> int:
        """Check every payment due now (each at most once per call); how many were checked."""
        seen: set[str] = set()
        while True:
            claims, found_due = await self._claim(exclude=seen)
            if not claims:
                if found_due:  # another process leased them first: look for others
                    continue
                return len(seen)
            seen.update(c.payment_id for c in claims)
            await asyncio.gather(*(self._check(c) for c in claims))

    async def _claim(self, exclude: set[str]) -> tuple[list[Claim], bool]:
        """Lease up to ``parallel`` due payments; also whether any were due (when all were
        leased by another process meanwhile, the list is empty but there may be more)."""
        now = self._clock()
        lease_until = now + self._lease
        due = sa.and_(payments.c.state == "pending", payments.c.next_check_at <= now,
                      payments.c.reference != "",  # nothing to ask the gateway about
                      sa.or_(payments.c.lease_until.is_(None), payments.c.lease_until < now))
        candidates_query = sa.select(payments.c.payment_id).where(due)
        if exclude:
            candidates_query = candidates_query.where(payments.c.payment_id.not_in(exclude))
        async with self._open_tx() as conn:
            candidates = (await conn.execute(
                candidates_query.order_by(payments.c.next_check_at, payments.c.payment_id)
                .limit(self._parallel))).scalars().all()
            won = []
            for payment_id in sorted(candidates):  # one lock order for every claimer
                result = await conn.execute(
                    sa.update(payments).where(payments.c.payment_id == payment_id, due)
                    .values(lease_until=lease_until))
                if result.rowcount == 1:
                    won.append(payment_id)
            if not won:
                return [], bool(candidates)
            rows = (await conn.execute(
                sa.select(payments.c.payment_id, payments.c.reference, payments.c.wallet_id,
                          payments.c.check_attempts)
                .where(payments.c.payment_id.in_(won)))).all()
        claims = [Claim(r.payment_id, r.reference, r.wallet_id, int(r.check_attempts),
                        lease_until) for r in rows]
        return claims, True

    async def _check(self, claim: Claim) -> None:
        """Ask, apply, release. Never raises: a failure leaves the lease to expire."""
        try:
            note = await self._ask_and_apply(claim)
            await self._release(claim, note)
        except Exception as exc:
            log.warning("payment reconciliation of %s failed, retried after the lease: %s",
                        claim.payment_id, _one_line(exc))

    async def _ask_and_apply(self, claim: Claim) -> str | None:
        """The check's note for ``last_check_error``: None when a final answer was applied."""
        try:
            answer = await self._gateway.status(claim.reference)
        except GatewayUnavailable as exc:
            note = exc.reason
        else:
            if answer is None:
                note = "the gateway does not know this reference"
            elif answer.status == "pending":
                note = "still pending at the gateway"
            else:
                try:
                    event = event_of(claim, answer)
                except ValidationError:
                    note = "unreadable answer (not a payment event)"
                else:
                    outcome = await apply_event(self._open_tx, event, source=SOURCE,
                                                policy=self._policy)
                    self._log_applied(claim, answer, outcome)
                    # The payment has left 'pending' now, unless the event's ID was taken
                    # with other content (kept for review): then say why it stays.
                    return (f"the answer {answer.status!r} conflicts with an earlier one"
                            if outcome.status == "conflict" else None)
        log.info("payment %s (reference %s) not settled yet: %s, check %d",
                 claim.payment_id, claim.reference, note, claim.earlier_checks + 1)
        return note

    def _log_applied(self, claim: Claim, answer: GatewayAnswer, outcome: EventOutcome) -> None:
        log.info("payment %s (reference %s): the gateway says %s, %s%s%s", claim.payment_id,
                 claim.reference, answer.status, outcome.status,
                 f" ({outcome.code})" if outcome.code else "", " (replay)" if outcome.replay
                 else "")

    async def _release(self, claim: Claim, note: str | None) -> None:
        """Count the check, give the lease back, and if the payment is still pending, say
        when to ask again. Only our own lease: one that expired and was taken is not ours."""
        retry_at = self._clock() + self._backoff.delay(claim.earlier_checks, self._rand())
        async with self._open_tx() as conn:
            await conn.execute(
                sa.update(payments)
                .where(payments.c.payment_id == claim.payment_id,
                       payments.c.lease_until == claim.lease_until)
                .values(lease_until=None, check_attempts=payments.c.check_attempts + 1,
                        last_check_error=note[:ERROR_LENGTH] if note else None,
                        next_check_at=sa.case((payments.c.state == "pending", retry_at),
                                              else_=payments.c.next_check_at)))


def gateway_of(base_url: str, api_key: str | None) -> GatewayStatus:
    """The status API client of the configuration (the one place that picks HTTP)."""
    return HttpGatewayStatus(base_url, api_key)


async def reconciling(app: web.Application) -> AsyncIterator[None]:
    """A ``cleanup_ctx``: the job as a task of the server's event loop while the app runs.
    It shares the loop with request handlers and only awaits I/O, so it never blocks them;
    on shutdown it is cancelled (an unfinished check keeps its lease until it expires)."""
    config = app[config_key]
    assert config.gateway_url, "wired only when a gateway URL is configured"
    gateway = gateway_of(config.gateway_url, config.gateway_api_key)
    job = Reconciliation(lambda: writing(app), gateway, config.payment_policy)
    log.info("payment reconciliation on: payments pending over %d min are checked%s",
             config.payment_pending_minutes,
             "" if config.gateway_api_key else " (no gateway_api_key configured)")
    task = asyncio.create_task(job.run_forever(), name="payment-reconciliation")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        await gateway.aclose()
