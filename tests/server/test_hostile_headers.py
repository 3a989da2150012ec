"""Header bytes that are not UTF-8 (issue 11): a clean 400 on every path, never a 500.

aiohttp turns such bytes into lone surrogates, which used to crash the token hash, the webhook
signature check and the admin cookie compares (500 and a traceback per request). Now
``request_guard`` refuses the request first: problem+json on the API, a plain page on the
console, the header's value never echoed, nothing recorded.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sync_server.api.webhooks import sign
from tests.admin.conftest import login
from tests.conftest import WEBHOOK_SECRET

from .helpers import enroll, sale
from .hostile import recorded, request_bytes, send

BAD = b"\xff\xfe\xc3("          # not UTF-8 in any reading


async def test_api_headers_that_are_not_utf8_are_a_400_problem(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    device = await enroll(client, school["enrollment_code"])
    token = device["device_token"].encode()
    push = json.dumps({"sales": [sale(school, 1)]}).encode()
    stamp = str(int(time.time()))
    event = json.dumps({"event_id": "evt_h", "event_type": "payment.completed",
                        "reference": "p", "wallet_id": school["wallets"][1]["wallet_id"],
                        "amount": 100, "currency": school["currency"],
                        "created_at": "2026-11-22T10:15:03+03:00"}).encode()
    signature = sign(WEBHOOK_SECRET, stamp, event).encode()
    json_type = (b"Content-Type", b"application/json")
    cases = {
        "Authorization": ("GET", "/api/v1/sync/snapshot", [(b"Authorization", b"Bearer " + BAD)],
                          b""),
        "Authorization ": ("POST", "/api/v1/sync/sales",
                           [(b"Authorization", b"Bearer " + token + BAD), json_type], push),
        "User-Agent": ("POST", "/api/v1/sync/sales",
                       [(b"Authorization", b"Bearer " + token), (b"User-Agent", BAD), json_type],
                       push),
        "X-Signature": ("POST", "/api/v1/webhooks/payments",
                        [(b"X-Timestamp", stamp.encode()),
                         (b"X-Signature", signature + BAD), json_type], event),
        "X-Timestamp": ("POST", "/api/v1/webhooks/payments",
                        [(b"X-Timestamp", stamp.encode() + BAD),
                         (b"X-Signature", signature), json_type], event),
    }
    before = await recorded(db_url)
    for header, (method, path, headers, body) in cases.items():
        resp = await send(client, request_bytes(method, path, headers, body))
        assert resp.status == 400, (header, resp.status, resp.body[:300])
        assert resp.is_problem(), (header, resp.body[:300])
        assert header.strip() in resp.json()["detail"]
        assert BAD not in resp.body and token not in resp.body
    assert await recorded(db_url) == before

    # The same requests with readable headers do what they always did.
    ok = await send(client, request_bytes("POST", "/api/v1/sync/sales",
                                          [(b"Authorization", b"Bearer " + token), json_type],
                                          push))
    assert ok.status == 200 and ok.json()["results"][0]["status"] == "applied"
    # A token that is UTF-8 but not ours is still just unknown.
    unknown = await send(client, request_bytes(
        "GET", "/api/v1/sync/snapshot", [(b"Authorization", "Bearer ü€".encode())]))
    assert unknown.status == 401 and unknown.is_problem()


async def test_admin_cookies_that_are_not_utf8_get_a_plain_400(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    await login(client, school["admin"]["email"], school["admin"]["password"])
    session = next(c.value for c in client.session.cookie_jar if c.key == "pos_admin").encode()
    form = (b"Content-Type", b"application/x-www-form-urlencoded")
    login_body = b"csrf_token=x&email=a%40b.example&password=p&next="
    cases = [
        ("GET", "/admin/", [(b"Cookie", b"pos_admin=" + BAD)], b""),
        ("GET", "/admin/wallets", [(b"Cookie", b"pos_admin=" + session + b"; other=" + BAD)],
         b""),
        ("GET", "/admin/login", [(b"Cookie", b"pos_flash=ok%3A" + BAD)], b""),
        ("POST", "/admin/login", [(b"Cookie", b"pos_login_csrf=" + BAD), form], login_body),
        ("POST", "/admin/logout", [(b"Cookie", b"pos_admin=" + session + BAD), form],
         b"csrf_token=x"),
    ]
    before = await recorded(db_url)
    for method, path, headers, body in cases:
        resp = await send(client, request_bytes(method, path, headers, body))
        assert resp.status == 400, (path, resp.status, resp.body[:300])
        assert resp.content_type == "text/plain"
        assert b"Cookie header is not valid UTF-8" in resp.body
        assert BAD not in resp.body and session not in resp.body
    assert await recorded(db_url) == before
    # The session still works: nothing was logged out or locked by the refusals.
    page = await send(client, request_bytes("GET", "/admin/wallets",
                                            [(b"Cookie", b"pos_admin=" + session)]))
    assert page.status == 200
