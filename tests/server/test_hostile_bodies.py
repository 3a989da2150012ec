"""Request bodies that lie about their encoding or nest too deep (issue 11): never a 500.

The API decodes identity, gzip and deflate that really are (``request_guard.read_body``);
another coding is 415, a body that does not decode 400, more than 8 MiB once decoded 413,
all problem+json and with nothing recorded. The console takes forms only as sent (plain 400).
"""

from __future__ import annotations

import gzip
import json
import time
import zlib
from typing import Any

from sync_server.api.webhooks import sign
from tests.conftest import WEBHOOK_SECRET

from .helpers import auth, enroll, sale
from .hostile import recorded, request_bytes, send

JSON = {"Content-Type": "application/json"}


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-15)
    return packer.compress(data) + packer.flush()


async def test_api_bodies_are_decoded_only_when_they_really_are_gzip_or_deflate(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    enroll_body = json.dumps({"enrollment_code": school["enrollment_code"],
                              "name": "Counter 1"}).encode()
    before = await recorded(db_url)
    refused = [
        ("gzip", b"this is not gzip", 400),
        ("gzip", gzip.compress(enroll_body)[:-6], 400),              # cut short
        ("gzip", gzip.compress(enroll_body) + b"trailing", 400),
        ("deflate", b"\x00\x01not deflate", 400),
        ("br", b"\x0b\x02\x80hello", 415),
        ("zstd", b"(\xb5/\xfd", 415),
        ("compress", enroll_body, 415),
        ("xyz", enroll_body, 415),                     # was taken as identity
        ("gzip, gzip", gzip.compress(gzip.compress(enroll_body)), 415),
    ]
    for coding, body, status in refused:
        resp = await client.post("/api/v1/devices/enroll", data=body,
                                 headers={**JSON, "Content-Encoding": coding})
        assert resp.status == status, (coding, await resp.text())
        assert resp.content_type == "application/problem+json"
    assert await recorded(db_url) == before        # the code was not used up either

    # A real gzip body is decoded: the same code enrolls.
    resp = await client.post("/api/v1/devices/enroll", data=gzip.compress(enroll_body),
                             headers={**JSON, "Content-Encoding": "GZip"})
    assert resp.status == 201, await resp.text()
    token = (await resp.json())["device_token"]

    for seq, (coding, pack) in enumerate([("gzip", gzip.compress), ("x-gzip", gzip.compress),
                                          ("deflate", zlib.compress),
                                          ("deflate", _raw_deflate),
                                          ("identity", bytes)], start=1):
        body = json.dumps({"sales": [sale(school, seq)]}).encode()
        resp = await client.post("/api/v1/sync/sales", data=pack(body),
                                 headers={**JSON, **auth(token), "Content-Encoding": coding})
        assert resp.status == 200, (coding, await resp.text())
        assert (await resp.json())["results"][0]["status"] == "applied"

    # Bad bodies on the push: refused after authentication, nothing recorded.
    before = await recorded(db_url)
    bomb = gzip.compress(b'{"sales": [' + b" " * (9 * 1024 * 1024) + b"]}")
    for coding, body, status in [("gzip", b"\x1f\x8bnot really", 400), ("br", b"xx", 415),
                                 ("gzip", bomb, 413)]:
        resp = await client.post("/api/v1/sync/sales", data=body,
                                 headers={**JSON, **auth(token), "Content-Encoding": coding})
        assert resp.status == status, (coding, await resp.text())
        assert resp.content_type == "application/problem+json"
    unauthenticated = await client.post("/api/v1/sync/sales", data=b"junk",
                                        headers={**JSON, "Content-Encoding": "br"})
    assert unauthenticated.status == 401                 # authentication is checked first
    assert await recorded(db_url) == before


async def test_webhook_bodies_and_timestamps_that_used_to_crash(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    def signed(body: bytes, stamp: str | None = None, **headers: str) -> dict[str, str]:
        stamp = stamp or str(int(time.time()))
        return {**JSON, "X-Timestamp": stamp, "X-Signature": sign(WEBHOOK_SECRET, stamp, body),
                **headers}

    before = await recorded(db_url)
    nested = b'{"event_type": "payment.completed", "x": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    resp = await client.post("/api/v1/webhooks/payments", data=nested, headers=signed(nested))
    assert resp.status == 422, await resp.text()
    assert resp.content_type == "application/problem+json"

    resp = await client.post("/api/v1/webhooks/payments", data=b"not gzip",
                             headers=signed(b"not gzip", **{"Content-Encoding": "gzip"}))
    assert resp.status == 400 and resp.content_type == "application/problem+json"

    # Digits that are not ASCII pass str.isdigit(); '²' then failed int() (500).
    for stamp in ("²", "١٧٠٠٠٠٠٠٠٠", "1e9"):
        resp = await client.post("/api/v1/webhooks/payments", data=b"{}",
                                 headers=signed(b"{}", stamp))
        assert resp.status == 401, (stamp, await resp.text())
    assert await recorded(db_url) == before


async def test_push_nested_deep_is_a_422_and_console_forms_are_never_compressed(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    token = (await enroll(client, school["enrollment_code"]))["device_token"]
    before = await recorded(db_url)
    deep = b'{"sales": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    resp = await client.post("/api/v1/sync/sales", data=deep, headers={**JSON, **auth(token)})
    assert resp.status == 422 and resp.content_type == "application/problem+json"

    form = b"csrf_token=x&email=a%40b.example&password=p"
    for coding, body in [("gzip", b"not gzip"), ("gzip", gzip.compress(form)), ("br", form)]:
        resp = await send(client, request_bytes(
            "POST", "/admin/login", [(b"Content-Type", b"application/x-www-form-urlencoded"),
                                     (b"Content-Encoding", coding.encode())], body))
        assert resp.status == 400, (coding, resp.status, resp.body[:200])
        assert resp.content_type == "text/plain"
    assert await recorded(db_url) == before
