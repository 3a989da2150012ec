"""The payment gateway's signed webhook: parse, authenticate, hand to the ledger, answer.

Contract (spec "Top-ups"): HMAC-SHA256 over ``"<timestamp>.<raw body>"`` in ``X-Signature``,
``X-Timestamp`` within 300 s either way. What an event does to money, and its idempotency by
``event_id``, is :mod:`sync_server.ledger.payments`; this module only decides who may send
one and how its outcome is told.

Decisions where the spec is silent (docs/server.md): the signature is checked before the
timestamp is trusted; a credit to a frozen or closed wallet is still posted (the parent
already paid) and flagged for review.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

import pydantic_core
from aiohttp import web

from shared.protocol import (
    KNOWN_PAYMENT_EVENTS,
    PaymentAnswer,
    PaymentEvent,
    PaymentHeld,
    PaymentIgnored,
)

from .. import metrics
from ..keys import config_key
from ..ledger.payments import HOLD_WORDS, EventOutcome, apply_event
from ..request_guard import read_body
from ..transactions import writing
from .problems import ProblemError, validate_json

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

REPLAY_WINDOW_S = 300
MAX_WEBHOOK_BYTES = 64 * 1024


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Signature`` value for a body (used by tests and by anyone simulating the gateway)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@routes.post("/api/v1/webhooks/payments")
async def payment_webhook(request: web.Request) -> web.Response:
    secret = request.app[config_key].webhook_secret
    if not secret:
        raise ProblemError(503, "webhook-disabled", "Payment webhook not configured",
                           "set POS_WEBHOOK_SECRET on the server")
    if (request.content_length or 0) > MAX_WEBHOOK_BYTES:
        raise ProblemError(413, "too-large", "Webhook body too large")
    raw = await read_body(request)
    if len(raw) > MAX_WEBHOOK_BYTES:
        raise ProblemError(413, "too-large", "Webhook body too large")
    try:
        _verify(secret, request.headers.get("X-Timestamp", ""),
                request.headers.get("X-Signature", ""), raw)
    except ProblemError:
        metrics.count_webhook(None, "bad_signature")
        raise

    event_type = _peek_type(raw)
    if event_type is not None and event_type not in KNOWN_PAYMENT_EVENTS:
        log.info("payment webhook: ignored unknown event type %r", event_type[:100])
        metrics.count_webhook("other", "ignored")  # the gateway's new words: bounded labels
        return web.json_response(PaymentIgnored(status="ignored", event_type=event_type[:100])
                                 .model_dump(mode="json"))
    event = validate_json(raw, PaymentEvent)
    outcome = await apply_event(lambda: writing(request.app), event, source="webhook",
                                policy=request.app[config_key].payment_policy)
    if not outcome.replay:
        log.info("payment webhook: %s %s -> %s%s", event.event_id, event.event_type,
                 outcome.status, f" ({outcome.code})" if outcome.code else "")
    metrics.count_webhook(event.event_type, "replay" if outcome.replay else outcome.status)
    return _answer(outcome)


def _verify(secret: str, timestamp: str, signature: str, raw: bytes) -> None:
    unauthorized = ProblemError(401, "bad-signature", "Webhook signature not accepted",
                                "sign '<X-Timestamp>.<raw body>' with HMAC-SHA256")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:  # not '²'
        raise unauthorized
    expected = sign(secret, timestamp, raw)
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        raise unauthorized
    if abs(time.time() - int(timestamp)) > REPLAY_WINDOW_S:
        raise ProblemError(401, "stale-timestamp", "Webhook timestamp outside the replay window",
                           f"X-Timestamp must be within {REPLAY_WINDOW_S} s of server time")


def _peek_type(raw: bytes) -> str | None:
    """The event type, read leniently, so an unknown type is ignored even if its body differs.

    pydantic's parser, like the one that validates the event: ``json.loads`` raises
    RecursionError (a 500) on a body nested 1,000 deep, this one a ValueError (then a 422)."""
    try:
        data = pydantic_core.from_json(raw)
    except ValueError:
        return None
    value = data.get("event_type") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def _answer(outcome: EventOutcome) -> web.Response:
    """What the gateway hears. Held events answer 202 so it stops retrying an event a person
    must settle; a v1 rejection (stored before v1.1) replays its 422."""
    if outcome.status == "conflict":
        log.warning("payment webhook: event %s re-sent with a different body", outcome.event_id)
        raise ProblemError(409, "event-conflict", "Event ID reused with a different body",
                           "no money moved; the attempt is kept for review",
                           event_id=outcome.event_id)
    if outcome.status == "rejected":
        words = {"wallet_unknown": "no wallet with this ID exists",
                 "currency_mismatch": "the currency is not the school's currency"}
        code = outcome.code or "rejected"
        raise ProblemError(422, code.replace("_", "-"), "Payment event not accepted",
                           words.get(code, code) + "; recorded for review",
                           event_id=outcome.event_id, code=code)
    if outcome.status == "held":
        return web.json_response(PaymentHeld(
            event_id=outcome.event_id, status="held_for_review", reason=outcome.code,
            detail=HOLD_WORDS.get(outcome.code or "", None), replay=outcome.replay,
        ).model_dump(mode="json"), status=202)
    return web.json_response(PaymentAnswer(
        status=outcome.status, event_id=outcome.event_id, balance_after=outcome.balance_after,
        flags=outcome.flags, replay=outcome.replay).model_dump(mode="json"))
