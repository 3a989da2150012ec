"""schemathesis against the live server, from the document the server publishes.

The schema is loaded from ``/api/v1/openapi.json`` of the real app on a real port
(``LiveServer``), and every operation in it (schemathesis leaves out the document's own path,
which tests/server/test_openapi.py covers) gets requests that fit the document and requests
that do not (schemathesis' positive and negative modes), sent with a device token (a device is
enrolled first) and, for the webhook, a valid signature computed over the bytes actually sent
(``WebhookSigner``: a requests auth hook runs after the body is encoded). Each answer must pass:

- ``not_a_server_error``: no 5xx;
- ``status_code_conformance``: the status is one the document lists for the operation;
- ``content_type_conformance`` and ``response_schema_conformance``: the body matches it.

The LiveServer also holds every answer to the closed schemas of tests/contract.py. A bounded
number of examples per operation and mode keeps this to well under a minute;
``POS_SCHEMATHESIS_EXAMPLES`` raises it for a longer hunt.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shared.protocol import KNOWN_PAYMENT_EVENTS
from sync_server.api.webhooks import sign
from sync_server.config import ServerConfig
from tests.conftest import WEBHOOK_SECRET, DatabaseFactory, LiveServer

pytestmark = pytest.mark.timeout(300)
EXAMPLES = int(os.environ.get("POS_SCHEMATHESIS_EXAMPLES", "15"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


class WebhookSigner(requests.auth.AuthBase):
    """Signs webhook requests as the gateway would: HMAC-SHA256 of '<timestamp>.<raw body>'."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if (request.path_url or "").startswith("/api/v1/webhooks/"):
            body = request.body or b""
            raw = body.encode() if isinstance(body, str) else body
            stamp = str(int(time.time()))
            request.headers["X-Timestamp"] = stamp
            request.headers["X-Signature"] = sign(WEBHOOK_SECRET, stamp, raw)
        return request


def steered(op: Any, mode: Any, school: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Cases for ``op``; valid webhook events and sales also get, now and then, a known event
    type, a demo wallet, cashier and product, so they reach the ledger instead of stopping at
    "unknown wallet" (random IDs never name a real one)."""
    cases = op.as_strategy(generation_mode=mode)
    if mode != schemathesis.GenerationMode.POSITIVE:
        return cases
    wallets = [w["wallet_id"] for w in school["wallets"][:5]]
    if op.path == "/api/v1/webhooks/payments":
        def event(case: Any, kind: str, wallet: str, currency: str) -> Any:
            if kind:
                case.body.update(event_type=kind, wallet_id=wallet, currency=currency)
            return case
        return st.builds(event, cases, st.sampled_from(["", *KNOWN_PAYMENT_EVENTS]),
                         st.sampled_from(wallets), st.sampled_from(["SAR", "SAR", "USD"]))
    if op.path == "/api/v1/sync/sales":
        def sales(case: Any, real: bool, wallet: str, item: int) -> Any:
            product = school["products"][item]
            for one in case.body["sales"] if real else ():
                one.update(wallet_id=wallet, cashier_id=school["cashiers"][0]["cashier_id"])
                for line in one["lines"]:
                    line.update(product_id=product["product_id"], unit_price=product["price"])
                one["total"] = sum(line["quantity"] * line["unit_price"] for line in one["lines"])
            return case
        return st.builds(sales, cases, st.booleans(), st.sampled_from(wallets),
                         st.integers(0, len(school["products"]) - 1))
    return cases


class FuzzedServer(LiveServer):
    """The live server with the enrollment limiter out of the way: after 10 failed codes every
    enrollment would be a 429 before its body is read, and the fuzz would stop there."""

    @property
    def config(self) -> ServerConfig:
        return dataclasses.replace(super().config, enroll_failures_per_minute=10**6)


@pytest.fixture
def server(db_factory: DatabaseFactory) -> Iterator[LiveServer]:
    import json

    live = FuzzedServer(db_factory.new(), json.loads(json.dumps(db_factory.demo)))
    live.start()
    yield live
    live.stop()  # fails the test if any answer broke the closed schemas (tests/contract.py)


def test_every_operation_answers_as_documented_and_never_5xx(server: LiveServer) -> None:
    enrolled = httpx.post(f"{server.url}/api/v1/devices/enroll", timeout=10,
                          json={"enrollment_code": server.enrollment_code(), "name": "Fuzz"})
    assert enrolled.status_code == 201, enrolled.text
    bearer = {"Authorization": "Bearer " + enrolled.json()["device_token"]}

    schema = schemathesis.openapi.from_url(f"{server.url}/api/v1/openapi.json")
    # The event stream never ends by itself, so a request-response fuzz cannot read it; its
    # refusals and its stream are covered by tests/server/test_events.py.
    operations = [op for op in (result.ok() for result in schema.get_all_operations())
                  if op.path != "/api/v1/sync/events"]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "GET /api/v1/health", "POST /api/v1/devices/enroll", "GET /api/v1/sync/snapshot",
        "POST /api/v1/sync/sales", "POST /api/v1/webhooks/payments"}

    session = requests.Session()
    session.auth = WebhookSigner()
    seen: Counter[tuple[str, int]] = Counter()
    started = time.monotonic()
    for op in operations:
        # An operation with no parameters and no body has nothing a negative case could break.
        breakable = any(len(part) for part in (op.query, op.headers, op.body))
        for mode in (schemathesis.GenerationMode.POSITIVE,
                     *([schemathesis.GenerationMode.NEGATIVE] if breakable else [])):
            @settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=steered(op, mode, server.demo["schools"][0]))
            def one(case: Any) -> None:
                answer = case.call_and_validate(base_url=server.url, session=session,
                                                headers=bearer, checks=CHECKS, timeout=10)
                seen[(case.operation.label, answer.status_code)] += 1

            one()
    # A held event (202) is one the random cases reach only now and then (an unknown wallet
    # under a known event type): one is sent on purpose, signed by the same hook, so the
    # document's 202 answer is always checked against the live server (the LiveServer's
    # contract check holds its body to the closed schema).
    held = session.post(f"{server.url}/api/v1/webhooks/payments", timeout=10, json={
        "event_id": "evt_fuzz_held", "event_type": "payment.completed", "reference": "fz-1",
        "wallet_id": "wal_nobody_at_all", "amount": 1000, "currency": "SAR",
        "created_at": "2026-11-27T10:00:00Z"})
    assert held.status_code == 202, held.text
    assert held.json()["status"] == "held_for_review"
    session.close()
    took = time.monotonic() - started
    print(f"schemathesis: {sum(seen.values())} requests in {took:.1f} s: {dict(seen)}")
    # The fuzz reached the handlers behind authentication, not only the refusals in front.
    statuses = {status for (_, status) in seen}
    assert {200, 422}.issubset(statuses), seen
    assert seen[("POST /api/v1/sync/sales", 200)] and seen[("GET /api/v1/sync/snapshot", 200)]
