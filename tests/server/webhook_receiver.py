"""A real HTTP receiver for outbound webhooks (its own port), answering as a test scripts it,
and helpers to add endpoints and wait for deliveries."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from shared.clock import utcnow
from shared.ids import new_id
from sync_server.notify.outbox import EVENT_TYPES
from sync_server.notify.producers import forget_subscriptions
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import webhook_endpoints
from tests.conftest import free_port


@dataclass
class Call:
    at: float  # time.monotonic() when the request arrived
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def signed_by(self, secret: str) -> bool:
        ts = self.headers["X-Timestamp"]
        mac = hmac.new(secret.encode(), ts.encode() + b"." + self.body, hashlib.sha256)
        return hmac.compare_digest("sha256=" + mac.hexdigest(), self.headers["X-Signature"])


@dataclass
class Receiver:
    """``script``: what the next requests get, in order: an int is a status code, a float is
    seconds to wait before answering 200 (to outlast the sender's timeout). Then 200."""

    script: list[int | float] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        self.calls.append(Call(time.monotonic(), dict(request.headers), await request.read()))
        answer = self.script.pop(0) if self.script else 200
        if isinstance(answer, float):
            await asyncio.sleep(answer)
            answer = 200
        return web.Response(status=answer, text="ok")

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def of_type(self, event_type: str) -> list[Call]:
        return [c for c in self.calls if c.headers.get("X-Event-Type") == event_type]


async def add_endpoint(db_url: str, school_id: str, url: str,
                       event_types: tuple[str, ...] = EVENT_TYPES) -> tuple[str, str]:
    """An active endpoint written straight to the database: (endpoint_id, secret)."""
    endpoint_id, secret, now = new_id("whe"), "whsec_test_" + new_id("s"), utcnow()
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(webhook_endpoints).values(
                endpoint_id=endpoint_id, school_id=school_id, url=url, secret=secret,
                event_types=list(event_types), active=True, description="test",
                created_at=now, updated_at=now))
    finally:
        await engine.dispose()
    forget_subscriptions()
    return endpoint_id, secret


async def wait_for(db_url: str, stmt: Any, expected: Any, seconds: float = 30.0) -> list[Any]:
    """Poll ``stmt`` (one engine, a read every 0.1 s) until its rows equal ``expected`` (a
    value, or a predicate of the rows)."""
    deadline = time.monotonic() + seconds
    engine = create_engine(db_url, pool_size=1)
    try:
        while True:
            async with engine.connect() as conn:
                rows = list((await conn.execute(stmt)).all())
            if (expected(rows) if callable(expected) else rows == expected):
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"still {rows!r} after {seconds} s")
            await asyncio.sleep(0.1)
    finally:
        await engine.dispose()
