"""Sending queued email through SMTP: lease, send, record, reschedule.

:func:`~.queue.enqueue` writes an ``outbound_emails`` row inside the transaction of what it
tells (a sale that crossed the low-balance threshold, a password reset). This job, run by every
server process while ``smtp_host`` is set, sends them. All of its state is in those rows, as
for outbound webhooks (``notify/delivery.py``), so a restart loses nothing and several
processes or hosts on one database never send one email twice at once:

- due rows are looked for with a plain read, so an idle server writes nothing;
- a row is claimed by a conditional UPDATE of ``lease_until`` (only while no live lease is
  held; checked by its rowcount), so exactly one claimer wins on either database;
- SMTP is spoken outside any transaction; the outcome is written in one short one, and only
  if the lease is still ours;
- a refused or failed send is retried after a random wait between ``base`` and
  ``min(longest, base x 2^n)`` until ``max_attempts`` tries failed, then ``failed``;
- a ``password_reset`` keeps no body once sent or given up on: it held a one-time link.

Without ``smtp_host`` no job runs and queued mail waits, to be sent once one is set.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import aiosmtplib
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow

from .. import metrics
from ..config import ServerConfig
from ..keys import config_key
from ..leased_job import LeasedJob, one_line
from ..log_masking import mask_email
from ..notify.delivery import Schedule
from ..storage.schema import outbound_emails
from ..transactions import reading, writing

log = logging.getLogger(__name__)

PARALLEL = 4  # emails claimed and sent at once, per process
ERROR_LENGTH = 300  # outbound_emails.last_error
SENT_BODY = "[sent]"  # what a sent one-time link's row keeps instead of the link
FAILED_BODY = "[not sent]"  # ... and one that was given up on (the admin has the link)
CLEARED_KINDS = frozenset({"password_reset"})

OpenTransaction = Callable[[], AbstractAsyncContextManager[AsyncConnection]]
Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class MailServer:
    """Where and how to send (the ``smtp_*`` settings)."""

    host: str
    port: int = 587
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = ""
    tls: str = "starttls"  # starttls|tls|none
    timeout: float = 30.0

    @classmethod
    def of(cls, config: ServerConfig) -> MailServer:
        return cls(host=config.smtp_host, port=config.smtp_port,
                   username=config.smtp_username or None,
                   password=config.smtp_password or None,
                   sender=config.smtp_from or f"cafeteria@{config.smtp_host}",
                   tls=config.smtp_tls, timeout=config.smtp_timeout_seconds)

    async def send(self, message: EmailMessage) -> None:
        """One message; raises on any failure (refused, unreachable, too slow)."""
        await aiosmtplib.send(
            message, hostname=self.host, port=self.port, username=self.username,
            password=self.password, use_tls=self.tls == "tls",
            start_tls=True if self.tls == "starttls" else False, timeout=self.timeout)


@dataclass(frozen=True, slots=True)
class Claim:
    """An email this process holds the lease of."""

    email_id: str
    kind: str
    to_address: str
    subject: str
    body_text: str
    language: str | None
    attempts: int  # tries before this one
    lease_until: datetime  # also the lease's identity


def message_of(claim: Claim, sender: str, now: datetime) -> EmailMessage:
    """A plain-text UTF-8 message with the headers mail servers and clients expect;
    ``Auto-Submitted`` keeps vacation responders from answering it."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = claim.to_address
    msg["Subject"] = claim.subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(idstring=claim.email_id,
                                   domain=sender.rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(claim.body_text, charset="utf-8")  # clears Content-* headers: first
    if claim.language:
        msg["Content-Language"] = claim.language
    return msg


class Sender(LeasedJob[Claim]):
    """The job: :meth:`run_once` sends what is due now, :meth:`run_forever` keeps doing it."""

    what = "email sending"

    def __init__(self, open_tx: OpenTransaction, open_read: OpenTransaction,
                 server: MailServer, schedule: Schedule, *, clock: Clock = utcnow,
                 parallel: int = PARALLEL, rand: Callable[[], float] = random.random) -> None:
        self._open_tx, self._open_read, self._server = open_tx, open_read, server
        self._schedule, self._clock, self._parallel, self._rand = schedule, clock, parallel, rand
        self._held: set[Claim] = set()

    def _due_where(self, now: datetime) -> sa.ColumnElement[bool]:
        return sa.and_(outbound_emails.c.state == "pending",
                       outbound_emails.c.next_attempt_at <= now,
                       sa.or_(outbound_emails.c.lease_until.is_(None),
                              outbound_emails.c.lease_until < now))

    async def _due(self, exclude: set[str]) -> list[str]:
        query = sa.select(outbound_emails.c.email_id).where(self._due_where(self._clock()))
        if exclude:
            query = query.where(outbound_emails.c.email_id.not_in(exclude))
        async with self._open_read() as conn:
            return list((await conn.execute(
                query.order_by(outbound_emails.c.next_attempt_at, outbound_emails.c.email_id)
                .limit(self._parallel))).scalars())

    async def _claim(self, due: list[str]) -> list[Claim]:
        now = self._clock()
        lease_until = now + self._schedule.lease
        won = []
        async with self._open_tx() as conn:
            for email_id in sorted(due):  # one lock order for every claimer
                result = await conn.execute(
                    sa.update(outbound_emails)
                    .where(outbound_emails.c.email_id == email_id, self._due_where(now))
                    .values(lease_until=lease_until))
                if result.rowcount == 1:
                    won.append(email_id)
            if not won:
                return []
            rows = (await conn.execute(
                sa.select(outbound_emails).where(outbound_emails.c.email_id.in_(won)))).all()
        claims = [Claim(r.email_id, r.kind, r.to_address, r.subject, r.body_text, r.language,
                        int(r.attempts), lease_until) for r in rows]
        self._held.update(claims)
        return claims

    async def _send(self, claim: Claim) -> None:
        """Send, record, release. Never raises: a failure leaves the lease to expire."""
        error: str | None = None
        try:
            await self._server.send(message_of(claim, self._server.sender, self._clock()))
        except TimeoutError:
            error = f"no answer within {self._server.timeout:g} s"
        except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
            error = one_line(exc, ERROR_LENGTH)
        try:
            await self._record(claim, error)
        except Exception as exc:
            log.warning("email %s not recorded, retried after its lease: %s",
                        claim.email_id, one_line(exc, ERROR_LENGTH))
        self._held.discard(claim)

    async def _record(self, claim: Claim, error: str | None) -> None:
        now = self._clock()
        tries = claim.attempts + 1
        values: dict[str, Any] = {"lease_until": None, "attempts": tries, "last_error": error}
        if error is None:
            outcome = "sent"
            values.update(state="sent", sent_at=now, next_attempt_at=None)
            if claim.kind in CLEARED_KINDS:
                values["body_text"] = SENT_BODY
        elif tries >= self._schedule.max_attempts:
            outcome = "failed"
            values.update(state="failed", next_attempt_at=None)
            if claim.kind in CLEARED_KINDS:
                values["body_text"] = FAILED_BODY
        else:
            outcome = "retry"
            values["next_attempt_at"] = now + self._schedule.delay(tries, self._rand())
        async with self._open_tx() as conn:
            result = await conn.execute(
                sa.update(outbound_emails)
                .where(outbound_emails.c.email_id == claim.email_id,
                       outbound_emails.c.lease_until == claim.lease_until)
                .values(**values))
        metrics.count_outbound_email(claim.kind, outcome)
        # The address masked (the log filter would too), never the subject or the body.
        log.info("email %s %s to %s: %s, try %d, %s%s", claim.kind, claim.email_id,
                 mask_email(claim.to_address), error or "accepted", tries, outcome,
                 "" if result.rowcount else " (lease lost)")

    async def _give_back(self) -> None:
        """Stopping: the leases held are released, so another process may send at once."""
        held, self._held = list(self._held), set()
        if not held:
            return
        try:
            async with self._open_tx() as conn:
                for claim in held:
                    await conn.execute(
                        sa.update(outbound_emails)
                        .where(outbound_emails.c.email_id == claim.email_id,
                               outbound_emails.c.lease_until == claim.lease_until)
                        .values(lease_until=None))
        except Exception as exc:  # they expire on their own
            log.warning("email leases not given back on stop: %s", one_line(exc, ERROR_LENGTH))


def schedule_of(config: ServerConfig) -> Schedule:
    return Schedule(base=timedelta(seconds=config.mail_retry_base_seconds),
                    longest=timedelta(seconds=config.mail_retry_max_seconds),
                    max_attempts=config.mail_max_attempts,
                    timeout=config.smtp_timeout_seconds)


async def mailing(app: web.Application) -> AsyncIterator[None]:
    """A ``cleanup_ctx``: the job as a task of the server's event loop while the app runs,
    only when ``smtp_host`` is set. On shutdown it is cancelled and gives its leases back."""
    config = app[config_key]
    if not config.smtp_host:
        yield
        return
    job = Sender(lambda: writing(app), lambda: reading(app), MailServer.of(config),
                 schedule_of(config))
    task = asyncio.create_task(job.run_forever(config.mail_poll_seconds), name="mail-sender")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
