"""The payment gateway's signed webhook: top-ups and refunds credited through the ledger.

Contract (spec "Top-ups"): HMAC-SHA256 over ``"<timestamp>.<raw body>"`` in ``X-Signature``,
``X-Timestamp`` within 300 s either way, idempotent by ``event_id``. The event row is inserted
*before* the money moves, in the same transaction: its primary key is the idempotency lock, so two
deliveries racing on two server processes post at most once (the loser gets the unique-key error,
retries, and finds the winner's row).

Decisions where the spec is silent (docs/admin.md): the signature is checked before the
timestamp is trusted; a replay of an event whose first outcome was a 422 repeats that 422 (the
outcome is final, an admin settles it from the review queue); a credit to a frozen or closed
wallet is still posted (the parent already paid) and flagged for review.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow
from shared.protocol import KNOWN_PAYMENT_EVENTS, PaymentEvent, canonical_time

from ..keys import config_key
from ..ledger.accounts import TOPUP_CLEARING
from ..ledger.transfers import move
from ..storage.schema import payment_conflicts, payment_events, schools, wallets
from ..transactions import writing
from .problems import ProblemError, validate_json

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

REPLAY_WINDOW_S = 300
MAX_WEBHOOK_BYTES = 64 * 1024
_RETRIES = 3


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Signature`` value for a body (used by tests and by anyone simulating the gateway)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def event_hash(event: PaymentEvent) -> str:
    """'Same body' compares the parsed event, not bytes, key order or time offsets."""
    data = event.model_dump(mode="json")
    data["created_at"] = canonical_time(event.created_at)
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


@routes.post("/api/v1/webhooks/payments")
async def payment_webhook(request: web.Request) -> web.Response:
    secret = request.app[config_key].webhook_secret
    if not secret:
        raise ProblemError(503, "webhook-disabled", "Payment webhook not configured",
                           "set POS_WEBHOOK_SECRET on the server")
    if (request.content_length or 0) > MAX_WEBHOOK_BYTES:
        raise ProblemError(413, "too-large", "Webhook body too large")
    raw = await request.read()
    if len(raw) > MAX_WEBHOOK_BYTES:
        raise ProblemError(413, "too-large", "Webhook body too large")
    _verify(secret, request.headers.get("X-Timestamp", ""),
            request.headers.get("X-Signature", ""), raw)

    event_type = _peek_type(raw)
    if event_type is not None and event_type not in KNOWN_PAYMENT_EVENTS:
        log.info("payment webhook: ignored unknown event type %r", event_type[:100])
        return web.json_response({"status": "ignored", "event_type": event_type[:100]})
    event = validate_json(raw, PaymentEvent)
    for attempt in range(1, _RETRIES + 1):
        try:
            return await _handle(request.app, event)
        except IntegrityError:
            if attempt == _RETRIES:
                raise
            log.info("payment webhook: %s raced another delivery; retrying", event.event_id)
    raise AssertionError("unreachable")


def _verify(secret: str, timestamp: str, signature: str, raw: bytes) -> None:
    unauthorized = ProblemError(401, "bad-signature", "Webhook signature not accepted",
                                "sign '<X-Timestamp>.<raw body>' with HMAC-SHA256")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise unauthorized
    expected = sign(secret, timestamp, raw)
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        raise unauthorized
    if abs(time.time() - int(timestamp)) > REPLAY_WINDOW_S:
        raise ProblemError(401, "stale-timestamp", "Webhook timestamp outside the replay window",
                           f"X-Timestamp must be within {REPLAY_WINDOW_S} s of server time")


def _peek_type(raw: bytes) -> str | None:
    """The event type, read leniently, so an unknown type is ignored even if its body differs."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    value = data.get("event_type") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


async def _handle(app: web.Application, event: PaymentEvent) -> web.Response:
    digest = event_hash(event)
    async with writing(app) as conn:
        prior = (await conn.execute(
            sa.select(payment_events).where(payment_events.c.event_id == event.event_id)
        )).first()
        if prior is None:
            row = await _apply(conn, event, digest)
        elif prior.content_hash != digest:
            await _keep_conflict(conn, event, digest, prior.school_id)
    # Answers are built after the commit, so a kept conflict or rejection survives the 4xx.
    if prior is None:
        log.info("payment webhook: %s %s -> %s", event.event_id, event.event_type,
                 row["status"])
        return _outcome(row, replay=False)
    if prior.content_hash == digest:
        return _outcome(prior._mapping, replay=True)
    log.warning("payment webhook: event %s re-sent with a different body", event.event_id)
    raise ProblemError(409, "event-conflict", "Event ID reused with a different body",
                       "no money moved; the attempt is kept for review",
                       event_id=event.event_id)


async def _apply(conn: AsyncConnection, event: PaymentEvent, digest: str) -> dict[str, Any]:
    """Record a first delivery and move its money, in the caller's transaction."""
    wallet = (await conn.execute(
        sa.select(wallets.c.school_id, wallets.c.status, schools.c.currency)
        .join(schools, schools.c.school_id == wallets.c.school_id)
        .where(wallets.c.wallet_id == event.wallet_id))).first()
    row: dict[str, Any] = {
        "event_id": event.event_id, "event_type": event.event_type,
        "wallet_id": event.wallet_id, "amount": event.amount, "currency": event.currency,
        "reference": event.reference, "created_at": event.created_at, "received_at": utcnow(),
        "content_hash": digest, "payload": event.model_dump(mode="json"), "flags": [],
        "school_id": wallet.school_id if wallet else None, "balance_after": None,
        "txn_id": None, "code": None,
    }
    if wallet is None or wallet.currency != event.currency:
        row.update(status="rejected",
                   code="wallet_unknown" if wallet is None else "currency_mismatch")
        await conn.execute(sa.insert(payment_events).values(**row))
        return row
    if wallet.status != "active":
        row["flags"].append(f"wallet_{wallet.status}")
    if event.event_type == "payment.failed":
        row.update(status="recorded")
        await conn.execute(sa.insert(payment_events).values(**row))
        return row
    credit = event.event_type == "payment.completed"
    row.update(status="credited" if credit else "debited")
    # The key row first: a racing duplicate fails here, before any money moves.
    await conn.execute(sa.insert(payment_events).values(**row))
    transfer = await move(
        conn, school_id=wallet.school_id, wallet_id=event.wallet_id,
        amount=event.amount if credit else -event.amount,
        counter_kind=TOPUP_CLEARING, kind="topup" if credit else "refund",
        memo=f"gateway {event.event_type} {event.reference}"[:500],
        actor="payment-gateway", occurred_at=event.created_at)
    if not credit and transfer.balance_after < 0:
        row["flags"].insert(0, "overdraft")
    row.update(txn_id=transfer.txn_id, balance_after=transfer.balance_after)
    await conn.execute(
        sa.update(payment_events).where(payment_events.c.event_id == event.event_id)
        .values(txn_id=transfer.txn_id, balance_after=transfer.balance_after,
                flags=row["flags"]))
    return row


async def _keep_conflict(conn: AsyncConnection, event: PaymentEvent, digest: str,
                         school_id: str | None) -> None:
    seen = (await conn.execute(
        sa.select(payment_conflicts.c.conflict_id)
        .where(payment_conflicts.c.event_id == event.event_id,
               payment_conflicts.c.content_hash == digest))).first()
    if seen is None:
        await conn.execute(sa.insert(payment_conflicts).values(
            event_id=event.event_id, school_id=school_id, content_hash=digest,
            payload=event.model_dump(mode="json"), received_at=utcnow()))


def _outcome(row: Any, *, replay: bool) -> web.Response:
    if row["status"] == "rejected":
        words = {"wallet_unknown": "no wallet with this ID exists",
                 "currency_mismatch": "the currency is not the school's currency"}
        raise ProblemError(422, row["code"].replace("_", "-"), "Payment event not accepted",
                           words.get(row["code"], row["code"]) + "; recorded for review",
                           event_id=row["event_id"], code=row["code"])
    body = {"status": row["status"], "event_id": row["event_id"],
            "balance_after": row["balance_after"], "flags": list(row["flags"] or []),
            "replay": replay}
    return web.json_response(body)
