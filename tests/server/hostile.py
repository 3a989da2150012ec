"""Hostile requests for tests: raw bytes over a real socket, and the rows a refusal must not add.

aiohttp's and httpx's clients refuse to send what an attacker sends (header bytes that are not
UTF-8, a NUL, a body that lies about its encoding), so these requests are written byte by byte
to the real server's port: the ``client`` fixture's test server, or a ``LiveServer``.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from shared.problems import PROBLEM_CONTENT_TYPE
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import (
    admin_sessions,
    audit_log,
    devices,
    payment_conflicts,
    payment_events,
    sale_conflicts,
    sales,
    wallets,
)

# What a refused request must leave as it was.
COUNTED = (sales, sale_conflicts, payment_events, payment_conflicts, devices, audit_log,
           wallets, admin_sessions)


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]        # lower-case names
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()

    def json(self) -> Any:
        return json.loads(self.body)

    def is_problem(self) -> bool:
        if self.content_type != PROBLEM_CONTENT_TYPE:
            return False
        doc = self.json()
        return isinstance(doc, dict) and doc.get("status") == self.status and "title" in doc


def request_bytes(method: str, target: str, headers: Iterable[tuple[bytes, bytes]] = (),
                  body: bytes = b"") -> bytes:
    """One HTTP/1.1 request, exactly these bytes (plus Host, Content-Length, Connection)."""
    head = [f"{method} {target} HTTP/1.1".encode(), b"Host: 127.0.0.1",
            b"Connection: close", b"Content-Length: " + str(len(body)).encode()]
    head += [name + b": " + value for name, value in headers]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def parse_response(data: bytes) -> RawResponse:
    """The response, or status 0 when the server closed the connection without one."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return RawResponse(0, {}, data)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return RawResponse(status, headers, body)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return out


async def send(client: Any, data: bytes) -> RawResponse:
    """Write ``data`` to the ``client`` fixture's real test server and read the answer."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(10):
            received = await reader.read()
    finally:
        writer.close()
    return parse_response(received)


def send_sync(port: int, data: bytes, timeout: float = 10) -> RawResponse:
    """The same for a server in another thread (``LiveServer``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return parse_response(b"".join(chunks))


async def recorded(db_url: str) -> dict[str, int]:
    """Row counts of every table a request could write to."""
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            return {t.name: int((await conn.execute(
                sa.select(sa.func.count()).select_from(t))).scalar_one()) for t in COUNTED}
    finally:
        await engine.dispose()
