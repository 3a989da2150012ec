"""NUL in text (issue 11): one rule on both databases, a clean refusal, nothing stored.

PostgreSQL refuses NUL in text (a 500 from deep inside a write, or a CSV cut after its 200);
SQLite stored it. Now JSON bodies refuse it through the wire models' ``Text`` type (422 with a
pointer) and ``request_guard`` refuses it in paths, console queries and forms (400).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from shared import protocol
from tests.admin.conftest import as_role, login
from tests.admin.test_security import ACTIONS, CREATES, make_world, state
from tests.admin.test_webhook import deliver, event

from .helpers import auth, enroll, sale, void_of
from .hostile import recorded


def _valid_requests() -> dict[type[BaseModel], dict[str, Any]]:
    """One valid example of every request model, with a string in every optional place."""
    line = {"product_id": "prd_1", "name": "Water", "quantity": 1, "unit_price": 150}
    one = {"ref": "0193a0e4-7c1a-7cc0-9a39-1f0b6f6d2a11", "seq": 1, "kind": "void",
           "voids": "0193a0e4-7c1a-7cc0-9a39-1f0b6f6d2a10",
           "created_at": "2026-11-22T10:15:03+03:00", "cashier_id": "cas_1",
           "wallet_id": "wal_1", "credential_uid": "04A1B2C3D4E5F6", "lines": [line],
           "total": 150, "offline": True}
    return {
        protocol.EnrollRequest: {"enrollment_code": "ABCD-EFGH", "name": "Counter 1"},
        protocol.SaleLine: line, protocol.Sale: one, protocol.SalesPush: {"sales": [one]},
        protocol.PaymentEvent: {"event_id": "evt_1", "event_type": "payment.completed",
                                "reference": "pay_1", "wallet_id": "wal_1", "amount": 100,
                                "currency": "SAR", "created_at": "2026-11-22T10:15:03Z"},
    }


def _string_places(value: Any, where: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, str):
        return [where]
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else [])
    return [place for key, sub in items for place in _string_places(sub, (*where, key))]


def _poisoned(value: Any, place: tuple[Any, ...]) -> Any:
    copy = json.loads(json.dumps(value))
    target = copy
    for key in place[:-1]:
        target = target[key]
    target[place[-1]] = target[place[-1]][:2] + "\x00" + target[place[-1]][2:]
    return copy


def test_every_string_of_every_request_model_refuses_nul() -> None:
    examples = _valid_requests()
    strict = {m for m in vars(protocol).values() if isinstance(m, type)
              and issubclass(m, protocol.Strict) and m is not protocol.Strict}
    assert strict == set(examples), "a new request model: give _valid_requests an example"
    tried = 0
    for model, example in examples.items():
        model.model_validate_json(json.dumps(example))
        for place in _string_places(example):
            with pytest.raises(ValidationError) as refused:
                model.model_validate_json(json.dumps(_poisoned(example, place)))
            assert [e["loc"] for e in refused.value.errors()] == [place], (model, place)
            tried += 1
    assert tried >= 25


def test_text_refuses_nul_with_words_a_person_reads() -> None:
    with pytest.raises(ValidationError) as refused:
        protocol.EnrollRequest.model_validate({"enrollment_code": "AB\x00", "name": "\x00"})
    assert [e["msg"] for e in refused.value.errors()] == [
        "text must not contain a NUL character (\\u0000)"] * 2
    assert protocol.text_problem("\udcff") is not None      # what undecodable bytes become
    assert protocol.text_problem("Sara A. ü 🙂\t\n") is None
    # The rule adds nothing to the JSON schema, and hides none of its patterns.
    ref = protocol.Sale.model_json_schema()["properties"]["ref"]
    assert ref["pattern"].startswith("^[0-9a-fA-F]{8}")


async def test_nul_in_device_api_bodies_is_a_422_and_stores_nothing(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    before = await recorded(db_url)
    resp = await client.post("/api/v1/devices/enroll", json={
        "enrollment_code": school["enrollment_code"], "name": "Counter\x001"})
    assert resp.status == 422 and (await resp.json())["errors"][0]["pointer"] == "/name"
    assert await recorded(db_url) == before          # the code is still unused:
    token = (await enroll(client, school["enrollment_code"]))["device_token"]

    first = sale(school, 1)
    bad_sales = [
        sale(school, 2, cashier_id="cas\x00"), sale(school, 2, wallet_id="wal\x00"),
        dict(sale(school, 2), lines=[dict(first["lines"][0], name="Water\x00")]),
        dict(sale(school, 2), lines=[dict(first["lines"][0], product_id="p\x00")]),
        void_of(first, 2, voids="ref\x00"),
    ]
    before = await recorded(db_url)
    for bad in bad_sales:
        resp = await client.post("/api/v1/sync/sales", json={"sales": [first, bad]},
                                 headers=auth(token))
        assert resp.status == 422, await resp.text()
        body = await resp.json()
        assert body["errors"][0]["pointer"].startswith("/sales/1/")
        assert "NUL" in json.dumps(body)
    assert await recorded(db_url) == before


async def test_nul_in_webhook_fields_is_a_422_and_stores_nothing(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    wallet_id = demo["schools"][0]["wallets"][1]["wallet_id"]
    before = await recorded(db_url)
    for field, value in [("event_id", "evt\x00"), ("reference", "pay\x00"),
                         ("wallet_id", wallet_id + "\x00")]:
        resp = await deliver(client, dict(event(wallet_id), **{field: value}))
        assert resp.status == 422, (field, await resp.text())
        assert (await resp.json())["errors"][0]["pointer"] == f"/{field}"
    # An event type nobody knows is ignored, as the spec says, whatever it holds.
    ignored = await deliver(client, event(wallet_id, kind="payment.completed\x00"))
    assert ignored.status == 200 and (await ignored.json())["status"] == "ignored"
    assert await recorded(db_url) == before


LIST_FILTERS = [
    "/admin/sales?student=a%00", "/admin/sales?device=%00", "/admin/sales?cashier=x%00",
    "/admin/sales?wallet=%00", "/admin/sales.csv?wallet=%00", "/admin/sales.csv?student=%00",
    "/admin/wallets?q=%00", "/admin/bracelets?q=04%00", "/admin/payments?q=%00",
    "/admin/audit?actor=%00", "/admin/audit?action=%00", "/admin/audit?target=%00",
    "/admin/sales?%00=1", "/admin/wallets/wal%00", "/admin/sales/ref%00x",
    "/admin/payments/pay%00", "/admin/bracelets/04A1%00",
]


async def test_nul_in_console_addresses_is_a_plain_400(client: Any,
                                                       demo: dict[str, Any]) -> None:
    admin = await as_role(client, demo, "admin")
    for path in LIST_FILTERS:
        resp = await admin.get(path)
        assert resp.status == 400, (path, resp.status)   # sales.csv: never a 200, then cut
        assert resp.content_type == "text/plain"
        assert "NUL" in await resp.text()
    # The same filters without NUL still work (and the CSV is whole).
    assert (await admin.get("/admin/sales?student=a")).status == 200
    csv_resp = await admin.get("/admin/sales.csv?wallet=none")
    assert csv_resp.status == 200 and (await csv_resp.text()).startswith("\ufeffref,")


async def test_nul_in_any_console_form_field_is_a_plain_400_and_changes_nothing(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    world = await make_world(client, demo)
    ids = world.ids(0)
    admin = await as_role(client, demo, "admin")
    forms = [(path(ids), fields(ids)) for _, path, fields in ACTIONS] + CREATES
    forms += [("/admin/settings", {"offline_max_hours": "7\x00"}),
              ("/admin/schools/select", {"school_id": "sch\x00"})]
    before, changed = await recorded(db_url), await state(db_url, ids)
    tried = 0
    for path, fields in forms:
        for name in list(fields) or ["note"]:
            poisoned = dict(fields, **{name: fields.get(name, "") + "\x00"})
            resp = await admin.post(path, poisoned)
            assert resp.status == 400, (path, name, resp.status, await resp.text())
            assert "contains a NUL" in await resp.text()
            tried += 1
    key_resp = await admin.client.post(   # a NUL in a field's name
        "/admin/products", data=f"csrf_token={admin.csrf}&name%00=Tea&category=x&price=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"}, allow_redirects=False)
    assert key_resp.status == 400
    assert tried >= 15
    assert await recorded(db_url) == before and await state(db_url, ids) == changed


async def test_nul_typed_at_login_is_refused_and_not_audited(client: Any, db_url: str,
                                                             demo: dict[str, Any]) -> None:
    before = await recorded(db_url)
    await login(client, "nobody\x00@school.example", "x", expect=400)
    await login(client, demo["schools"][0]["admin"]["email"], "pass\x00word", expect=400)
    assert await recorded(db_url) == before       # no failed-login row, no session
