"""Health, enrollment, authentication and request validation of the device API."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from sync_server.storage.engine import create_engine
from sync_server.storage.schema import devices, sales

from .helpers import auth, enroll, push, sale


async def test_health_names_version_and_database(client: Any, db_url: str) -> None:
    resp = await client.get("/api/v1/health")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok"
    assert body["database"] == ("sqlite" if db_url.startswith("sqlite") else "postgresql")
    assert body["version"]


async def test_enroll_gives_a_working_token_and_the_code_is_single_use(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    device = await enroll(client, school["enrollment_code"])
    assert device["school_id"] == school["school_id"]
    assert device["currency"] == school["currency"]
    assert "+" in device["server_time"] or device["server_time"].endswith("Z")
    ok = await client.get("/api/v1/sync/snapshot", headers=auth(device["device_token"]))
    assert ok.status == 200

    again = await client.post("/api/v1/devices/enroll",
                              json={"enrollment_code": school["enrollment_code"], "name": "x"})
    unknown = await client.post("/api/v1/devices/enroll",
                                json={"enrollment_code": "AAAA-BBBB-CCCC", "name": "x"})
    assert again.status == unknown.status == 403
    assert again.content_type == "application/problem+json"
    # The same answer for used and unknown codes: no oracle.
    assert await again.json() == await unknown.json()

    engine = create_engine(db_url)
    async with engine.connect() as conn:
        stored = (await conn.execute(sa.select(devices.c.token_hash)
                                     .where(devices.c.device_id == device["device_id"]))).one()
    await engine.dispose()
    assert device["device_token"] not in stored.token_hash  # only a hash is kept


async def test_expired_code_is_refused_like_an_unknown_one(client: Any, demo: dict[str, Any],
                                                           db_url: str) -> None:
    from datetime import timedelta

    from sync_server.records import create_enrollment_code

    engine = create_engine(db_url)
    async with engine.begin() as conn:
        code = await create_enrollment_code(conn, demo["schools"][0]["school_id"],
                                            timedelta(seconds=-1))
    await engine.dispose()
    resp = await client.post("/api/v1/devices/enroll", json={"enrollment_code": code, "name": "x"})
    assert resp.status == 403


async def test_enrollment_failures_are_rate_limited_per_address(client: Any,
                                                               demo: dict[str, Any]) -> None:
    for _ in range(10):
        resp = await client.post("/api/v1/devices/enroll",
                                 json={"enrollment_code": "WRONG-CODE", "name": "x"})
        assert resp.status == 403
    limited = await client.post("/api/v1/devices/enroll",
                                json={"enrollment_code": demo["schools"][0]["enrollment_code"],
                                      "name": "x"})
    assert limited.status == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.content_type == "application/problem+json"


async def test_unknown_token_401_and_revoked_device_403_keep_nothing(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    resp = await client.get("/api/v1/sync/snapshot", headers=auth("not-a-token"))
    assert resp.status == 401
    assert resp.content_type == "application/problem+json"
    missing = await client.post("/api/v1/sync/sales", json={"sales": []})
    assert missing.status == 401

    device = await enroll(client, school["enrollment_code"])
    from sync_server.records import revoke_device

    engine = create_engine(db_url)
    async with engine.begin() as conn:
        await revoke_device(conn, device["device_id"])
    resp = await client.post("/api/v1/sync/sales", json={"sales": [sale(school, 1)]},
                             headers=auth(device["device_token"]))
    assert resp.status == 403
    problem = await resp.json()
    assert problem["type"].endswith("/device-revoked")
    async with engine.connect() as conn:
        count = (await conn.execute(sa.select(sa.func.count()).select_from(sales))).scalar_one()
    await engine.dispose()
    assert count == 0


async def test_auth_is_checked_before_the_body(client: Any) -> None:
    resp = await client.post("/api/v1/sync/sales", data=b"{not json",
                             headers=auth("bogus"))
    assert resp.status == 401


def _bad_bodies(school: dict[str, Any]) -> dict[str, Any]:
    good = sale(school, 1)
    return {
        "float money": {"sales": [dict(good, total=float(good["total"]))]},
        "string money": {"sales": [dict(good, total=str(good["total"]))]},
        "unknown field": {"sales": [dict(good, tip=5)]},
        "unknown top-level field": {"sales": [good], "extra": True},
        "missing field": {"sales": [{k: v for k, v in good.items() if k != "seq"}]},
        "naive time": {"sales": [dict(good, created_at="2026-11-22T10:15:03")]},
        "zero quantity": {"sales": [dict(good, lines=[dict(good["lines"][0], quantity=0)])]},
        "negative price": {"sales": [dict(good, lines=[dict(good["lines"][0], unit_price=-1)])]},
        "lower-case uid": {"sales": [dict(good, credential_uid="04a1b2c3d4e5f6")]},
        "void without target": {"sales": [dict(good, kind="void", voids=None)]},
        "bad kind": {"sales": [dict(good, kind="refund")]},
        "seq zero": {"sales": [dict(good, seq=0)]},
    }


async def test_schema_invalid_batches_are_422_and_leave_no_trace(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    token = (await enroll(client, school["enrollment_code"]))["device_token"]
    for name, body in _bad_bodies(school).items():
        # A valid sale first in the batch must not be applied either.
        body = dict(body, sales=[sale(school, 1), *body["sales"]]) if "sales" in body else body
        resp = await client.post("/api/v1/sync/sales", data=json.dumps(body),
                                 headers={**auth(token), "Content-Type": "application/json"})
        assert resp.status == 422, name
        assert resp.content_type == "application/problem+json", name
        problem = await resp.json()
        expected = "/extra" if name == "unknown top-level field" else "/sales/1"
        assert problem["errors"] and problem["errors"][0]["pointer"].startswith(expected), name
    not_json = await client.post("/api/v1/sync/sales", data=b"{oops", headers=auth(token))
    assert not_json.status == 422
    status = await push(client, token, [])
    assert status["acked_seq"] == 0 and status["missing_seqs"] == []
    engine = create_engine(db_url)
    async with engine.connect() as conn:
        count = (await conn.execute(sa.select(sa.func.count()).select_from(sales))).scalar_one()
    await engine.dispose()
    assert count == 0


async def test_too_many_sales_or_bytes_is_413(client: Any, demo: dict[str, Any]) -> None:
    school = demo["schools"][0]
    token = (await enroll(client, school["enrollment_code"]))["device_token"]
    batch = [sale(school, i + 1) for i in range(1001)]
    resp = await client.post("/api/v1/sync/sales", json={"sales": batch}, headers=auth(token))
    assert resp.status == 413
    assert resp.content_type == "application/problem+json"
    huge = b'{"sales": [' + b" " * (8 * 1024 * 1024 + 10) + b"]}"
    resp = await client.post("/api/v1/sync/sales", data=huge,
                             headers={**auth(token), "Content-Type": "application/json"})
    assert resp.status == 413
    assert resp.content_type == "application/problem+json"


async def test_unknown_routes_answer_problem_json(client: Any) -> None:
    resp = await client.get("/api/v1/nope")
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
