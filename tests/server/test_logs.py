"""Both log formats against the real app: JSON lines carry the request's facts, the request ID
is kept or made and echoed, and a bracelet UID never appears in full in either format."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from shared.ids import mask_uid
from sync_server import logs
from sync_server.app import create_app
from sync_server.config import ServerConfig

from .helpers import auth, enroll, sale


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, logging.Handler]]:
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    root, access = logging.getLogger(), logging.getLogger("aiohttp.access")
    old = root.level, access.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    access.setLevel(logging.INFO)
    yield buf, handler
    root.removeHandler(handler)
    root.setLevel(old[0])
    access.setLevel(old[1])


async def _traffic(aiohttp_client: Any, config: ServerConfig,
                   demo: dict[str, Any]) -> tuple[dict[str, Any], str, Any]:
    client = await aiohttp_client(create_app(config))
    school = demo["schools"][0]
    device = await enroll(client, school["enrollment_code"])
    body = sale(school, 1)
    uid = body["credential_uid"]
    assert uid
    resp = await client.post("/api/v1/sync/sales", json={"sales": [body]},
                             headers={**auth(device["device_token"]), "X-Request-ID": "till-7.1"})
    assert resp.status == 200
    assert resp.headers["X-Request-ID"] == "till-7.1"
    resp = await client.get(f"/admin/bracelets/{uid}", allow_redirects=False,
                            headers={"X-Request-ID": "x" * 65})
    assert len(resp.headers["X-Request-ID"]) == 32  # too long: replaced by a new one
    logging.getLogger("sync_server.test").info("sold to %s", mask_uid(uid))
    return device, uid, client


@pytest.mark.parametrize("fmt", ["human", "json"])
async def test_request_lines_mask_uids_and_json_carries_request_facts(
        aiohttp_client: Any, server_config: ServerConfig, demo: dict[str, Any],
        captured: tuple[io.StringIO, logging.Handler], fmt: str) -> None:
    buf, handler = captured
    handler.setFormatter(logs.json_formatter() if fmt == "json"
                         else logging.Formatter(logs.HUMAN_FORMAT))
    device, uid, _ = await _traffic(aiohttp_client, replace(server_config, log_format=fmt),
                                    demo)
    text = buf.getvalue()
    assert uid not in text and uid.lower() not in text
    assert f"/admin/bracelets/{mask_uid(uid)}" in text
    if fmt == "human":
        assert "POST /api/v1/sync/sales HTTP/1.1" in text
        return
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    push = next(r for r in records if r.get("path") == "/api/v1/sync/sales")
    assert push["request_id"] == "till-7.1"
    assert push["device_id"] == device["device_id"]
    assert (push["method"], push["status"], push["level"]) == ("POST", 200, "INFO")
    assert push["remote"] == "127.0.0.1"
    assert 0 < push["duration_ms"] < 30_000
    bracelet = next(r for r in records if r.get("path", "").startswith("/admin/bracelets/"))
    assert bracelet["device_id"] is None and len(bracelet["request_id"]) == 32


def test_configure_writes_one_json_object_a_line() -> None:
    buf = io.StringIO()
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    try:
        logs.configure("json", buf)
        logging.getLogger("sync_server.x").warning("hello %s", "there")
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
    record = json.loads(buf.getvalue())
    assert (record["level"], record["logger"], record["message"]) == (
        "WARNING", "sync_server.x", "hello there")


def test_serve_with_json_logs_writes_only_json_lines(sqlite_factory: Any,
                                                     tmp_path: Any) -> None:
    """The real ``pos-server serve`` process, configured by the environment (POS_LOG_FORMAT)."""
    import httpx

    from .serve_process import serve

    db_url = sqlite_factory.new()
    with serve(db_url, tmp_path, env={"POS_LOG_FORMAT": "json"}) as served:
        resp = httpx.get(f"{served.url}/api/v1/health", headers={"X-Request-ID": "probe-1"})
        assert resp.headers["X-Request-ID"] == "probe-1"
        assert httpx.get(f"{served.url}/metrics").status_code == 200
    records = [json.loads(line) for line in served.log_text().splitlines() if line.strip()]
    assert any(r.get("logger") == "sync_server" and "revision" in r["message"] for r in records)
    probe = next(r for r in records if r.get("request_id") == "probe-1")
    assert (probe["path"], probe["status"], probe["method"]) == ("/api/v1/health", 200, "GET")
