"""Behind a TLS proxy every peer is the proxy. With ``trusted_proxies`` the server believes the
proxy's X-Forwarded-For, so one client's failed enrollments do not lock out the others."""

from __future__ import annotations

from typing import Any

from sync_server.app import create_app
from sync_server.config import ServerConfig

# Documentation addresses (RFC 5737), used only as header values.
CLIENT_A, CLIENT_B = "198.51.100.7", "198.51.100.8"


async def _fail_enrollments(client: Any, address: str, times: int) -> int:
    status = 0
    for _ in range(times):
        resp = await client.post("/api/v1/devices/enroll",
                                 json={"enrollment_code": "WRONG", "name": "x"},
                                 headers={"X-Forwarded-For": address})
        status = resp.status
    return status


async def test_rate_limit_is_per_real_client_behind_a_trusted_proxy(
        aiohttp_client: Any, db_url: str) -> None:
    client = await aiohttp_client(create_app(ServerConfig(db_url=db_url,
                                                          trusted_proxies="127.0.0.1")))
    assert await _fail_enrollments(client, CLIENT_A, 10) == 403
    assert await _fail_enrollments(client, CLIENT_A, 1) == 429
    assert await _fail_enrollments(client, CLIENT_B, 1) == 403  # not locked out by A


async def test_without_the_setting_all_clients_share_the_proxy_address(
        aiohttp_client: Any, db_url: str) -> None:
    client = await aiohttp_client(create_app(ServerConfig(db_url=db_url)))
    await _fail_enrollments(client, CLIENT_A, 10)
    assert await _fail_enrollments(client, CLIENT_B, 1) == 429


async def test_requests_not_through_the_proxy_are_refused_except_health(
        aiohttp_client: Any, db_url: str) -> None:
    client = await aiohttp_client(create_app(ServerConfig(db_url=db_url,
                                                          trusted_proxies="192.0.2.1")))
    refused = await client.get("/api/v1/sync/snapshot",
                               headers={"X-Forwarded-For": CLIENT_A})
    assert refused.status == 400
    assert refused.content_type == "application/problem+json"
    assert (await client.get("/api/v1/health")).status == 200
