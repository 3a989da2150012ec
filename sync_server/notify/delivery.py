"""Sending outbound webhook deliveries: lease, POST, record, reschedule (at least once).

``notify.outbox.emit`` writes one ``webhook_deliveries`` row per (event, subscribed endpoint)
in the transaction of the change it tells. This job, run by every server process, sends them.
All of its state is in those rows, so it survives restarts and shares the work between any
number of processes and hosts on one database, as payment reconciliation does:

- due rows are first looked for with a plain read, so an idle server writes nothing;
- a row is *claimed* by a conditional UPDATE that sets ``lease_until`` only while no live
  lease is held (checked by its rowcount): exactly one claimer wins on either database;
- the POST happens outside any transaction; the outcome is then written in one short one:
  a ``webhook_attempts`` row always, and the delivery's new state only if the lease is still
  ours (a lease that expired under a hung process may have been taken by another);
- 2xx is delivered; anything else (another status, a redirect, which is never followed, a
  timeout, a refused connection) is retried after a random wait between ``base`` and
  ``min(longest, base x 2^n)`` for the n-th failure ("full jitter" above a floor), until
  ``max_attempts`` tries have failed: then ``failed``, until an admin redelivers;
- a process that stops gives its leases back; one that dies loses them when they expire.

The contract is therefore *at least once*: a receiver that answered 2xx after the sender gave
up waiting, or a process killed between the POST and its record, means a second POST of the
same event ``id``; receivers dedupe on it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection
from yarl import URL

from shared.clock import utcnow

from .. import metrics
from ..api.webhooks import sign
from ..keys import config_key
from ..leased_job import LeasedJob, one_line
from ..storage.schema import (
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
    webhook_events,
)
from ..transactions import reading, writing

log = logging.getLogger(__name__)

PARALLEL = 8  # deliveries claimed and sent at once, per process
ERROR_LENGTH = 300  # webhook_deliveries.last_error, webhook_attempts.error
USER_AGENT = "cafeteria-pos-webhooks/1"

OpenTransaction = Callable[[], AbstractAsyncContextManager[AsyncConnection]]
Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Schedule:
    """How often and how long a delivery is tried (the ``webhook_*`` settings)."""

    base: timedelta = timedelta(seconds=30)
    longest: timedelta = timedelta(hours=1)
    max_attempts: int = 15
    timeout: float = 10.0

    def delay(self, failures: int, rand: float) -> timedelta:
        """The wait after the ``failures``-th failed try (1 = the first)."""
        cap = min(self.longest, self.base * (1 << min(failures, 30)))
        floor = min(self.base, cap)
        return floor + (cap - floor) * rand

    @property
    def lease(self) -> timedelta:
        """Longer than one try (the POST's timeout, then one short transaction), so a lease
        only expires under a process that died or hung."""
        return timedelta(seconds=self.timeout * 2 + 30)


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery this process holds the lease of, with what sending it needs."""

    delivery_id: str
    school_id: str
    event_id: str
    event_type: str
    url: str
    secret: str
    attempts: int  # tries before this one
    body: bytes
    lease_until: datetime  # also the lease's identity: released only if still ours


@dataclass(frozen=True, slots=True)
class Answer:
    """One try's outcome."""

    status: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def iso_utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def envelope(event: Any) -> bytes:
    """The body POSTed for an event: the same bytes on every try and every endpoint."""
    return json.dumps({"id": event.event_id, "type": event.event_type,
                       "created_at": iso_utc(event.created_at), "school_id": event.school_id,
                       "data": event.data}, separators=(",", ":"), ensure_ascii=False,
                      sort_keys=False).encode()


def headers_for(claim: Claim, now: float) -> dict[str, str]:
    timestamp = str(int(now))
    return {"Content-Type": "application/json", "User-Agent": USER_AGENT,
            "X-Timestamp": timestamp, "X-Signature": sign(claim.secret, timestamp, claim.body),
            "X-Event-Id": claim.event_id, "X-Event-Type": claim.event_type}


class Delivery(LeasedJob[Claim]):
    """The job: :meth:`run_once` sends what is due now, :meth:`run_forever` keeps doing it."""

    what = "webhook delivery"

    def __init__(self, open_tx: OpenTransaction, open_read: OpenTransaction,
                 session: aiohttp.ClientSession, schedule: Schedule, *,
                 clock: Clock = utcnow, parallel: int = PARALLEL,
                 rand: Callable[[], float] = random.random) -> None:
        self._open_tx, self._open_read, self._session = open_tx, open_read, session
        self._schedule, self._clock, self._parallel, self._rand = schedule, clock, parallel, rand
        self._held: set[Claim] = set()

    def _due_where(self, now: datetime) -> sa.ColumnElement[bool]:
        return sa.and_(webhook_deliveries.c.state == "pending",
                       webhook_deliveries.c.next_attempt_at <= now,
                       sa.or_(webhook_deliveries.c.lease_until.is_(None),
                              webhook_deliveries.c.lease_until < now))

    async def _due(self, exclude: set[str]) -> list[str]:
        """Due deliveries of active endpoints, by a read only (an idle server writes nothing).
        A deactivated endpoint's deliveries wait, and resume when it is activated again."""
        query = (sa.select(webhook_deliveries.c.delivery_id)
                 .join(webhook_endpoints,
                       webhook_endpoints.c.endpoint_id == webhook_deliveries.c.endpoint_id)
                 .where(self._due_where(self._clock()), webhook_endpoints.c.active))
        if exclude:
            query = query.where(webhook_deliveries.c.delivery_id.not_in(exclude))
        async with self._open_read() as conn:
            return list((await conn.execute(
                query.order_by(webhook_deliveries.c.next_attempt_at,
                               webhook_deliveries.c.delivery_id)
                .limit(self._parallel))).scalars())

    async def _claim(self, due: list[str]) -> list[Claim]:
        now = self._clock()
        lease_until = now + self._schedule.lease
        won = []
        async with self._open_tx() as conn:
            for delivery_id in sorted(due):  # one lock order for every claimer
                result = await conn.execute(
                    sa.update(webhook_deliveries)
                    .where(webhook_deliveries.c.delivery_id == delivery_id, self._due_where(now))
                    .values(lease_until=lease_until))
                if result.rowcount == 1:
                    won.append(delivery_id)
            if not won:
                return []
            rows = (await conn.execute(
                sa.select(webhook_deliveries.c.delivery_id, webhook_deliveries.c.attempts,
                          webhook_events.c.event_id, webhook_events.c.event_type,
                          webhook_events.c.school_id, webhook_events.c.data,
                          webhook_events.c.created_at, webhook_endpoints.c.url,
                          webhook_endpoints.c.secret)
                .join(webhook_events,
                      webhook_events.c.event_id == webhook_deliveries.c.event_id)
                .join(webhook_endpoints,
                      webhook_endpoints.c.endpoint_id == webhook_deliveries.c.endpoint_id)
                .where(webhook_deliveries.c.delivery_id.in_(won)))).all()
        claims = [Claim(r.delivery_id, r.school_id, r.event_id, r.event_type, r.url, r.secret,
                        int(r.attempts), envelope(r), lease_until) for r in rows]
        self._held.update(claims)
        return claims

    async def _send(self, claim: Claim) -> None:
        """POST, record, release. Never raises: a failure leaves the lease to expire."""
        try:
            answer = await self._post(claim)
            await self._record(claim, answer)
        except Exception as exc:
            log.warning("webhook delivery %s not recorded, retried after its lease: %s",
                        claim.delivery_id, one_line(exc, ERROR_LENGTH))
        # Not in a ``finally``: a claim cancelled mid-try stays held, for _give_back.
        self._held.discard(claim)

    async def _post(self, claim: Claim) -> Answer:
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            async with self._session.post(
                    claim.url, data=claim.body, headers=headers_for(claim, time.time()),
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=self._schedule.timeout)) as response:
                status = response.status
                if not 200 <= status < 300:
                    error = (f"HTTP {status} (redirects are not followed)"
                             if 300 <= status < 400 else f"HTTP {status}")
        except TimeoutError:
            error = f"no answer within {self._schedule.timeout:g} s"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            error = one_line(exc, ERROR_LENGTH)
        return Answer(status, error, int((time.perf_counter() - started) * 1000))

    async def _record(self, claim: Claim, answer: Answer) -> None:
        now = self._clock()
        tries = claim.attempts + 1
        values: dict[str, Any] = {
            "lease_until": None, "attempts": tries, "last_status": answer.status,
            "last_error": answer.error, "last_attempt_at": now}
        if answer.delivered:
            outcome = "delivered"
            values.update(state="delivered", delivered_at=now, next_attempt_at=None)
        elif tries >= self._schedule.max_attempts:
            outcome = "failed"
            values.update(state="failed", next_attempt_at=None)
        else:
            outcome = "retry"
            values["next_attempt_at"] = now + self._schedule.delay(tries, self._rand())
        async with self._open_tx() as conn:
            await conn.execute(sa.insert(webhook_attempts).values(
                delivery_id=claim.delivery_id, school_id=claim.school_id, at=now,
                status_code=answer.status, error=answer.error, duration_ms=answer.duration_ms))
            result = await conn.execute(
                sa.update(webhook_deliveries)
                .where(webhook_deliveries.c.delivery_id == claim.delivery_id,
                       webhook_deliveries.c.lease_until == claim.lease_until)
                .values(**values))
        metrics.count_outbound_webhook(claim.event_type, outcome)
        # The URL's host only, never its path or query (they may carry a token), nor the body.
        log.info("webhook %s %s to %s: %s%s", claim.event_type, claim.event_id,
                 _host(claim.url), answer.error or f"HTTP {answer.status}",
                 f", try {tries}, {outcome}" + ("" if result.rowcount else " (lease lost)"))

    async def _give_back(self) -> None:
        """Stopping: the leases held are released, so another process may send at once."""
        held, self._held = list(self._held), set()
        if not held:
            return
        try:
            async with self._open_tx() as conn:
                for claim in held:
                    await conn.execute(
                        sa.update(webhook_deliveries)
                        .where(webhook_deliveries.c.delivery_id == claim.delivery_id,
                               webhook_deliveries.c.lease_until == claim.lease_until)
                        .values(lease_until=None))
        except Exception as exc:  # they expire on their own
            log.warning("webhook leases not given back on stop: %s", one_line(exc, ERROR_LENGTH))


def _host(url: str) -> str:
    try:
        return URL(url).host or "?"
    except ValueError:
        return "?"


async def delivering(app: web.Application) -> AsyncIterator[None]:
    """A ``cleanup_ctx``: the job as a task of the server's event loop while the app runs.
    It only awaits I/O, so it never blocks request handlers; on shutdown it is cancelled and
    gives its leases back."""
    config = app[config_key]
    schedule = Schedule(base=timedelta(seconds=config.webhook_retry_base_seconds),
                        longest=timedelta(seconds=config.webhook_retry_max_seconds),
                        max_attempts=config.webhook_max_attempts,
                        timeout=config.webhook_timeout_seconds)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=PARALLEL * 2), trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar())
    job = Delivery(lambda: writing(app), lambda: reading(app), session, schedule)
    task = asyncio.create_task(job.run_forever(config.webhook_poll_seconds),
                               name="webhook-delivery")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        await session.close()
