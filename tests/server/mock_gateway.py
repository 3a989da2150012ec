"""A payment gateway's status API for tests: a real aiohttp app on a free 127.0.0.1 port.

It answers ``GET /payments/{reference}`` as docs/server.md ("Payment reconciliation") says a
gateway does, from what the test told it, and can misbehave on request: answer 500, be slow,
hang past the client's timeout, or (through the answer a test sets) give another amount.
Every look-up is recorded, so tests can count how often a payment was asked about.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, defaultdict, deque
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

API_KEY = "test-gateway-key-not-for-production"
HANG_SECONDS = 30.0  # longer than any client timeout in the tests


class MockGateway:
    def __init__(self) -> None:
        self.answers: dict[str, dict[str, Any]] = {}
        self.delay = 0.0  # seconds before every answer
        # Per reference, misbehaviours for its next look-ups, in order: "500", "hang", "junk".
        self.script: dict[str, deque[str]] = defaultdict(deque)
        self.asked: Counter[str] = Counter()       # reference -> look-ups started
        self.in_flight = 0
        self.started = asyncio.Event()             # set at every look-up's start
        self.bearers: set[str] = set()             # Authorization headers seen
        self._closing = asyncio.Event()            # ends slow and hanging answers
        app = web.Application()
        app.router.add_get("/gw/payments/{reference}", self._status)
        self._server = TestServer(app, host="127.0.0.1", port=0)

    @property
    def url(self) -> str:
        return str(self._server.make_url("/gw"))

    async def start(self) -> None:
        await self._server.start_server()

    async def close(self) -> None:
        self._closing.set()
        await self._server.close()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    def settle(self, reference: str, *, amount: int, status: str = "completed",
               currency: str = "SAR", wallet_id: str | None = None,
               updated_at: datetime | None = None) -> None:
        """From now on, the gateway says this of ``reference``."""
        self.answers[reference] = {
            "reference": reference, "status": status, "amount": amount, "currency": currency,
            "wallet_id": wallet_id, "method": "card",  # a field the server does not read
            "updated_at": (updated_at or datetime(2026, 11, 22, 7, 0, tzinfo=UTC)).isoformat()}

    def fail_next(self, reference: str, *how: str) -> None:
        self.script[reference].extend(how)

    async def _status(self, request: web.Request) -> web.StreamResponse:
        reference = request.match_info["reference"]
        self.asked[reference] += 1
        self.bearers.add(request.headers.get("Authorization", ""))
        self.in_flight += 1
        self.started.set()
        try:
            if request.headers.get("Authorization") != f"Bearer {API_KEY}":
                return web.json_response({"error": "unauthorized"}, status=401)
            if self.delay:
                await self._pause(self.delay)
            trouble = self.script[reference].popleft() if self.script[reference] else None
            if trouble == "500":
                return web.json_response({"error": "internal"}, status=500)
            if trouble == "hang":
                await self._pause(HANG_SECONDS)
            if trouble == "junk":
                return web.Response(text="<html>maintenance</html>", content_type="text/html")
            answer = self.answers.get(reference)
            if answer is None:
                return web.json_response({"error": "no such payment"}, status=404)
            return web.json_response(answer)
        finally:
            self.in_flight -= 1
