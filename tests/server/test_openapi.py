"""The published OpenAPI document: served, complete, and the checker that holds answers to it.

The document is what schemathesis fuzzes and what every /api/v1 answer of the suite is
validated against (tests/contract.py), so these tests make sure it covers every route the app
serves, carries the v1.1 additions, and that the checker really refuses what it should.
"""

from __future__ import annotations

import json
from typing import Any

from shared.problems import PROBLEM_CONTENT_TYPE
from tests.contract import contract

from .helpers import enroll, snapshot

DOC = "/api/v1/openapi.json"


async def test_the_document_is_served_without_auth_and_names_every_api_route(client: Any) -> None:
    resp = await client.get(DOC)
    assert resp.status == 200 and resp.content_type == "application/json"
    document = await resp.json()
    assert document["openapi"].startswith("3.1") and document == contract().document
    served = {(r.resource.canonical, r.method.lower()) for r in client.app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith("/api/")
              and r.method != "HEAD"}
    documented = {(path, method) for path, methods in document["paths"].items()
                  for method in methods}
    assert served == documented
    ops = document["paths"]
    assert ops["/api/v1/sync/sales"]["post"]["security"] == [{"deviceToken": []}]
    assert ops["/api/v1/webhooks/payments"]["post"]["security"] == [{"webhookSignature": []}]
    assert ops["/api/v1/health"]["get"]["security"] == []
    for methods in ops.values():
        for op in methods.values():
            for status, answer in op["responses"].items():
                media = set(answer["content"])
                success = ({"text/event-stream"} if op["operationId"] == "events_get"
                           else {"application/json"})
                assert media == ({PROBLEM_CONTENT_TYPE} if int(status) >= 400
                                 else success), (status, media)


def test_requests_are_closed_and_responses_carry_the_v11_fields() -> None:
    schemas = contract().document["components"]["schemas"]
    for name in ("SalesPush", "Sale", "SaleLine", "EnrollRequest", "PaymentEvent"):
        assert schemas[name]["additionalProperties"] is False, name
    assert "additionalProperties" not in schemas["SnapshotResponse"]  # may gain fields
    assert {"spent_today", "grade", "homeroom", "restrictions"} <= set(
        schemas["WalletRow"]["required"])
    assert {"allergens", "position"} <= set(schemas["ProductRow"]["required"])
    result = schemas["SaleResult"]
    assert "original_status" in result["properties"]
    assert "original_status" not in result["required"]  # sent on replays only
    assert "restricted_item" in result["properties"]["flags"]["items"]["enum"]
    held = contract().document["paths"]["/api/v1/webhooks/payments"]["post"]["responses"]["202"]
    assert held["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PaymentHeld"}


async def test_the_checker_refuses_what_breaks_the_document(client: Any,
                                                           demo: dict[str, Any]) -> None:
    """A real snapshot passes; the same with one field too many, one missing, an undocumented
    status or the wrong content type does not."""
    token = (await enroll(client, demo["schools"][0]["enrollment_code"]))["device_token"]
    body = await snapshot(client, token)
    check = contract().problems
    path, ok = "/api/v1/sync/snapshot", json.dumps(body).encode()
    assert check(path, "get", 200, "application/json", ok) == []

    extra = dict(body, wallets=[dict(body["wallets"][0], secret="x")])
    missing = dict(body, wallets=[{k: v for k, v in body["wallets"][0].items()
                                   if k != "spent_today"}])
    bad_flag = {"results": [{"ref": "r", "status": "applied", "flags": ["free_lunch"],
                             "balance_after": 1, "code": None, "detail": None}],
                "acked_seq": 1, "missing_seqs": [], "server_time": body["server_time"]}
    assert check(path, "get", 200, "application/json", json.dumps(extra).encode())
    assert check(path, "get", 200, "application/json", json.dumps(missing).encode())
    assert check("/api/v1/sync/sales", "post", 200, "application/json",
                 json.dumps(bad_flag).encode())
    assert check(path, "get", 418, "application/json", ok)
    assert check(path, "get", 200, PROBLEM_CONTENT_TYPE, ok)
