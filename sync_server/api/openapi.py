"""The device API and the webhook as an OpenAPI 3.1 document, served at ``/api/v1/openapi.json``.

The document is generated, never written by hand: the JSON schemas come from the same pydantic
models that validate requests (``shared.protocol``) and describe responses, and the table below
only says which model goes with which operation and status. Built once when the app is made.

Tests keep it honest from both sides: every response the test suite receives from /api/v1 is
validated against it (tests/contract.py), schemathesis fuzzes the live server with it
(tests/server/test_openapi_fuzz.py), and docs/protocol.md must name every path and value it
lists (tests/test_protocol_doc.py).

Compatibility (spec v1.1): response objects may gain properties in a later v1.x, so the
document does not forbid unknown properties in responses; request objects forbid them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from shared.problems import PROBLEM_CONTENT_TYPE, Problem
from shared.protocol import (
    MAX_SALES_PER_PUSH,
    EnrollRequest,
    EnrollResponse,
    HealthResponse,
    PaymentAnswer,
    PaymentEvent,
    PaymentHeld,
    PaymentIgnored,
    SalesPush,
    SalesPushResponse,
    SnapshotResponse,
)

from .webhooks import MAX_WEBHOOK_BYTES, REPLAY_WINDOW_S

PATH = "/api/v1/openapi.json"
REF = "#/components/schemas/{model}"
Auth = Literal["none", "device", "webhook"]


@dataclass(frozen=True)
class Operation:
    """One operation: what it takes and every status it answers with (problems included)."""

    method: str
    path: str
    summary: str
    auth: Auth
    answers: dict[int, tuple[str, tuple[type[BaseModel], ...]]]  # status -> (words, models)
    body: type[BaseModel] | None = None
    query: list[dict[str, Any]] = field(default_factory=list)
    # A success answered with something other than JSON: (media type, its schema).
    stream: tuple[str, dict[str, Any]] | None = None


# Problems every operation can answer: a header that is not UTF-8 text (request_guard) and a
# database that cannot serve now (api/outages.py, with Retry-After).
_EVERYWHERE = {400: "a header is not valid UTF-8 text or contains NUL",
               503: "the database is unavailable or the server overloaded; retry after "
                    "Retry-After seconds"}
_BODY = {408: "the body arrived too slowly", 413: "the body is too large",
         415: "a Content-Encoding other than gzip or deflate",
         422: "the body does not parse into the request schema (nothing was recorded)"}
_DEVICE = {401: "missing or unknown device token", 403: "the device was revoked"}

OPERATIONS = [
    Operation("get", "/api/v1/health", "Is the server up, and which database does it use",
              "none", {200: ("the server answers", (HealthResponse,))}),
    Operation("post", "/api/v1/devices/enroll", "Enroll a terminal with a one-time code",
              "none", {201: ("enrolled: keep the token, it is shown once", (EnrollResponse,)),
                       403: ("the code is unknown, used or expired (one answer for all)", ()),
                       429: ("too many failed codes from this address; see Retry-After", ())},
              body=EnrollRequest),
    Operation("get", "/api/v1/sync/snapshot", "Wallets, bracelets, products, cashiers and "
              "settings of the device's school: full, or what changed since a cursor",
              "device", {200: ("a full snapshot, a delta, or one page of either",
                               (SnapshotResponse,))},
              query=[{"name": "cursor", "in": "query", "required": False,
                      "schema": {"type": "string"},
                      "description": "the cursor of the previous response; absent, empty, "
                                     "unknown or too old gives a full snapshot"}]),
    Operation("post", "/api/v1/sync/sales", "Push queued sales and voids; learn acked_seq and "
              "missing_seqs", "device",
              {200: ("one result per sale, in request order", (SalesPushResponse,)),
               413: (f"more than {MAX_SALES_PER_PUSH} sales, or a body over 8 MiB", ())},
              body=SalesPush),
    Operation("get", "/api/v1/sync/events", "Server-sent events: when to pull the snapshot "
              "delta (v1.1)", "device",
              {200: ("an event stream: `event: snapshot` with data {\"version\": \"...\"} "
                     "at once and after each change, a `: ping` comment every 15 s; no wallet "
                     "data", ())},
              stream=("text/event-stream", {"type": "string"})),
    Operation("post", "/api/v1/webhooks/payments", "A payment gateway event (top-up, refund, "
              "chargeback)", "webhook",
              {200: ("applied, replayed, or an unknown event type ignored",
                     (PaymentAnswer, PaymentIgnored)),
               202: ("held for review: stored, not applied; do not retry", (PaymentHeld,)),
               401: (f"bad signature, or X-Timestamp more than {REPLAY_WINDOW_S} s away", ()),
               409: ("this event_id was used with a different body; kept for review", ()),
               413: (f"a body over {MAX_WEBHOOK_BYTES // 1024} KiB", ()),
               503: ("no webhook secret configured, or the database cannot serve now", ())},
              body=PaymentEvent),
]


def _problem_statuses(op: Operation) -> dict[int, str]:
    statuses = dict(_EVERYWHERE)
    if op.body is not None:
        statuses.update(_BODY)
    if op.auth == "device":
        statuses.update(_DEVICE)
    return statuses


def build_document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the operations above (``version``: the server's)."""
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Problem, "validation")]
    for op in OPERATIONS:
        if op.body is not None:
            wanted.append((op.body, "validation"))
        wanted += [(m, "serialization") for _, models in op.answers.values() for m in models]
    refs, top = models_json_schema(list(dict.fromkeys(wanted)), ref_template=REF)
    problem_ref = refs[(Problem, "validation")]
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        responses: dict[str, Any] = {
            str(status): {"description": words,
                          "content": {PROBLEM_CONTENT_TYPE: {"schema": problem_ref}}}
            for status, words in _problem_statuses(op).items()}
        for status, (words, models) in op.answers.items():
            if op.stream is not None and status < 300:
                content = {op.stream[0]: {"schema": op.stream[1]}}
            elif not models:
                content = {PROBLEM_CONTENT_TYPE: {"schema": problem_ref}}
            else:
                schemas = [refs[(m, "serialization")] for m in models]
                one = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
                content = {"application/json": {"schema": one}}
            responses[str(status)] = {"description": words, "content": content}
        entry: dict[str, Any] = {
            "operationId": op.path.rsplit("/", 1)[-1].replace(".", "_") + "_" + op.method,
            "summary": op.summary,
            "responses": dict(sorted(responses.items())),
            "security": {"none": [], "device": [{"deviceToken": []}],
                         "webhook": [{"webhookSignature": []}]}[op.auth],
        }
        parameters = list(op.query)
        if op.auth == "webhook":
            parameters.append({
                "name": "X-Timestamp", "in": "header", "required": True,
                "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
                "description": f"unix seconds; within {REPLAY_WINDOW_S} s of the server's "
                               "clock either way, and part of what is signed"})
        if parameters:
            entry["parameters"] = parameters
        if op.body is not None:
            entry["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": refs[(op.body, "validation")]}}}
        paths.setdefault(op.path, {})[op.method] = entry
    paths[PATH] = {"get": {
        "operationId": "openapi_get", "summary": "This document", "security": [],
        "responses": {"200": {"description": "the OpenAPI 3.1 document",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                      **{str(s): {"description": w, "content": {
                          PROBLEM_CONTENT_TYPE: {"schema": problem_ref}}}
                         for s, w in _EVERYWHERE.items()}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Cafeteria POS sync protocol", "version": "1.1",
                 "summary": "The device API and the payment webhook",
                 "description": "Generated by the server (version " + version + ") from its "
                                "wire models; the words are in docs/protocol.md. Responses may "
                                "gain properties in a later v1.x: clients ignore those they "
                                "do not know. Requests are strict."},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {
                "deviceToken": {"type": "http", "scheme": "bearer",
                                "description": "the device_token from enrollment"},
                "webhookSignature": {
                    "type": "apiKey", "in": "header", "name": "X-Signature",
                    "description": "sha256=<hex HMAC-SHA256, keyed with the shared webhook "
                                   "secret, of '<X-Timestamp>.<raw body>'>"}},
        },
    }


def setup_openapi(app: web.Application, version: str) -> None:
    """Build the document now (a model that cannot be described fails at startup, not on the
    first request) and serve the same bytes to everyone."""
    body = json.dumps(build_document(version), separators=(",", ":")).encode()

    async def openapi(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app.router.add_get(PATH, openapi)
