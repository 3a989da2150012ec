"""One simulated till of the fleet benchmark: what a real till sends, without its screen.

A till holds its own device token, seq counter and delta cursor, and mirrors its school's
wallets and bracelets from the snapshot. Like the real sync worker (terminal/sync/worker.py)
it runs one sync cycle at a time and coalesces triggers: a sale, an event from its stream, or
(polling) its timer. A sale's cycle pushes and pulls, except while the stream is held: then it
only pushes, and the event that push causes brings the pull. An event's cycle pulls (and pushes
only what is queued), at least ``MIN_PULL_GAP_S`` after the previous event's cycle. A sale
never waits for the network: it goes to the queue and the cycle pushes it; a push that fails
leaves it queued for the next cycle, so nothing is lost and a retry is a replay the server
answers ``duplicate``.

The watcher (``Watch``) is told when this till's snapshot first shows what a measurement
waits for: a top-up wallet's new balance, or a bracelet blocked.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from benchmarks.fleet_seed import School
from shared.ids import new_ref
from terminal.settings import STREAM_MIN_PULL_GAP_S as MIN_PULL_GAP_S


@dataclass
class Stats:
    """Shared by every till of one run."""

    push_ms: list[float] = field(default_factory=list)
    pulls: int = 0
    events: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    pushed: dict[str, int] = field(default_factory=dict)   # ref -> total, acknowledged
    applied: int = 0
    duplicates: int = 0
    stream_connects: int = 0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


# (school_id, kind, key, seen_value, till) -> called on each pulled change worth watching
Watch = Callable[[str, str, str, Any, int], None]


class Till:
    def __init__(self, index: int, school: School, token: str, client: httpx.AsyncClient,
                 streams: httpx.AsyncClient, stats: Stats, watch: Watch,
                 rng: random.Random) -> None:
        self.index, self.school, self.token = index, school, token
        self.client, self.streams = client, streams
        self.stats, self.watch, self.rng = stats, watch, rng
        self.headers = {"Authorization": f"Bearer {token}"}
        self.seq = 0
        self.cursor: str | None = None
        self.queue: list[dict[str, Any]] = []
        self.blocked: set[str] = set()
        self._wake = asyncio.Event()
        self._woken = False     # by a sale (or the drain)
        self._evented = False   # by an event
        self.live = False       # the stream is held

    # ------------------------------------------------------------------ selling

    def sell(self) -> None:
        """Record one sale to a buyer whose bracelet this till's snapshot shows active."""
        wallet_id, uid = self.rng.choice(self.school.buyers)
        product_id, price = self.rng.choice(self.school.products)
        qty = 1 + self.rng.randrange(2)
        self.seq += 1
        self.queue.append({
            "ref": new_ref(), "seq": self.seq, "kind": "sale", "voids": None,
            "created_at": datetime.now(UTC).isoformat(), "cashier_id": self.school.cashier_id,
            "wallet_id": wallet_id, "credential_uid": uid,
            "lines": [{"product_id": product_id, "name": "item", "quantity": qty,
                       "unit_price": price}],
            "total": qty * price, "offline": False})
        self.wake()

    async def selling(self, interval: float, until: float) -> None:
        """A lunch-rush line: sales ``interval`` seconds apart on average (exponential gaps,
        so tills do not march in step). The first gap is exponential too, so the district's
        sales arrive at one steady rate from the first second: a uniform first gap followed
        by exponential ones offered 1.5 times the rate during the first ``interval`` seconds
        (425-453 sales per 5 s at 500 tills instead of about 310)."""
        while True:
            await asyncio.sleep(self.rng.expovariate(1 / interval))
            if time.monotonic() >= until:
                return
            self.sell()

    # ------------------------------------------------------------------ the sync cycle

    def wake(self) -> None:
        self._woken = True
        self._wake.set()

    def _event(self) -> None:
        self._evented = True
        self._wake.set()

    async def syncing(self, poll_interval: float | None) -> None:
        """Cycles until cancelled: on a wake, or every ``poll_interval`` seconds if given."""
        last_event = -MIN_PULL_GAP_S
        while True:
            try:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a
                # cancellation that arrives as the event is set, and the task never ends.
                async with asyncio.timeout(poll_interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            by_event = self._evented and not self._woken
            push_only = self._woken and not self._evented and self.live
            self._evented = self._woken = False
            if by_event:  # what arrives during the gap joins this pull
                await asyncio.sleep(max(0.0, last_event + MIN_PULL_GAP_S - time.monotonic()))
                push_only = False
                self._wake.clear()
                self._evented = self._woken = False
                last_event = time.monotonic()
            await self.cycle(push_only=push_only)

    async def cycle(self, *, push_only: bool = False) -> None:
        pulled = True
        try:
            if self.queue:
                await self.push()
            if not push_only:
                pulled = False
                pulled = await self.pull()
        except httpx.HTTPError as exc:
            self.stats.error(type(exc).__name__)
        if self.queue or not pulled:
            # The push or the pull failed (a 503 at rush): try again shortly, as the real
            # till's backoff does. Without it a till whose pull after the school's last
            # change was refused kept its old snapshot until the next change.
            await asyncio.sleep(0.5 + self.rng.random())
            self._woken = False  # a full cycle: the failed push may have missed its event
            self._evented = not pulled
            self._wake.set()

    async def push(self) -> None:
        batch = self.queue[:1000]
        started = time.perf_counter()
        resp = await self.client.post("/api/v1/sync/sales", json={"sales": batch},
                                      headers=self.headers)
        if resp.status_code != 200:
            self.stats.error(f"push {resp.status_code}")
            return
        self.stats.push_ms.append((time.perf_counter() - started) * 1000)
        for sale, result in zip(batch, resp.json()["results"], strict=True):
            if result["status"] == "applied":
                self.stats.applied += 1
            elif result["status"] == "duplicate":
                self.stats.duplicates += 1
            else:
                self.stats.error(f"sale {result['status']}")
            self.stats.pushed[sale["ref"]] = sale["total"]
        del self.queue[:len(batch)]

    async def pull(self) -> bool:
        """Pull every page of the delta; False when the server refused one."""
        more = True
        while more:
            params = {"cursor": self.cursor} if self.cursor else {}
            resp = await self.client.get("/api/v1/sync/snapshot", params=params,
                                         headers=self.headers)
            if resp.status_code != 200:
                self.stats.error(f"pull {resp.status_code}")
                return False
            self.stats.pulls += 1
            body = resp.json()
            school_id = self.school.school_id
            for wallet in body["wallets"]:
                self.watch(school_id, "balance", wallet["wallet_id"], wallet["balance"],
                           self.index)
            for credential in body["credentials"]:
                if credential["status"] == "blocked":
                    self.blocked.add(credential["uid"])
                    self.watch(school_id, "blocked", credential["uid"], True, self.index)
            self.cursor, more = body["cursor"], bool(body.get("more"))
        return True

    # ------------------------------------------------------------------ the event stream

    async def streaming(self) -> None:
        """Hold the stream; reconnect after a pause when it drops, as the till does."""
        while True:
            try:
                async with aconnect_sse(self.streams, "GET", "/api/v1/sync/events",
                                        headers=self.headers,
                                        timeout=httpx.Timeout(None, connect=10)) as source:
                    if source.response.status_code != 200:
                        self.stats.error(f"stream {source.response.status_code}")
                    else:
                        self.stats.stream_connects += 1
                        self.live = True
                        async for event in source.aiter_sse():
                            if event.event == "snapshot":
                                self.stats.events += 1
                                self._event()
            except httpx.HTTPError as exc:
                self.stats.error(f"stream {type(exc).__name__}")
            if self.live:  # back to full cycles at once: an event may have been missed
                self.live = False
                self.wake()
            await asyncio.sleep(1 + self.rng.random())
