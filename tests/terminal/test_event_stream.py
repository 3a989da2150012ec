"""The till holds the server's event stream (issue 14): a real terminal core and its real sync
worker against the real server in-process, the worker's poll set to 600 s so that only the
stream can bring a change in time.

A webhook top-up and a bracelet blocked in the console reach the till within 2 s; with the
stream cut by a proxy, polling still brings both and the status says so; the stream comes
back after a server restart; a revoked till's stream ends and is not retried. The last tests
hold a tiny hand-written SSE server (a real aiohttp server on a real port), for what the real
one never does on purpose: go silent, answer 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from sync_server.api.webhooks import sign
from terminal.core import Terminal
from terminal.errors import SaleRefused
from terminal.sync.backoff import Backoff
from terminal.sync.events import EventListener
from terminal.sync.worker import SyncWorker
from tests.conftest import WEBHOOK_SECRET, DatabaseFactory, LiveServer, free_port

from .cli_run import BIN, ROOT

LIVE_WITHIN_S = 2.0
NO_POLL_S = 600.0  # the worker's poll: far beyond every test, so only the stream can help


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until ``check()`` held; fails the test after ``timeout``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.02)
    return time.monotonic() - start


# ---------------------------------------------------------------------- the server's side


def top_up(server_url: str, wallet_id: str, amount: int) -> None:
    """A payment gateway's signed ``payment.completed`` (spec: Top-ups)."""
    body = json.dumps({
        "event_id": f"evt_{uuid.uuid4().hex}", "event_type": "payment.completed",
        "reference": f"pay_{uuid.uuid4().hex}", "wallet_id": wallet_id, "amount": amount,
        "currency": "SAR", "created_at": datetime.now(UTC).isoformat()}).encode()
    stamp = str(int(time.time()))
    answer = httpx.post(f"{server_url}/api/v1/webhooks/payments", content=body, headers={
        "Content-Type": "application/json", "X-Timestamp": stamp,
        "X-Signature": sign(WEBHOOK_SECRET, stamp, body)}, timeout=10)
    assert answer.status_code == 200, answer.text


def block_in_console(server: LiveServer, school: dict[str, Any], uid: str) -> None:
    """The school admin blocks a bracelet through the console's own form (login, CSRF)."""
    csrf = re.compile(r'name="csrf_token" value="([^"]+)"')
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        token = csrf.search(browser.get("/admin/login").text)
        assert token
        done = browser.post("/admin/login", data={
            "email": school["admin"]["email"], "password": school["admin"]["password"],
            "csrf_token": token.group(1), "next": ""})
        assert done.status_code == 303, done.text
        token = csrf.search(browser.get("/admin/").text)
        assert token
        done = browser.post(f"/admin/bracelets/{uid}/block",
                            data={"csrf_token": token.group(1), "reason": "lost"})
        assert done.status_code == 303, done.text


def revoke(server: LiveServer, device_id: str) -> None:
    done = subprocess.run([str(BIN / "pos-server"), "revoke-device", "--db", server.db_url,
                           "--device", device_id], capture_output=True, text=True, cwd=ROOT,
                          check=False, timeout=60)
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------------- the till's side


class Till:
    """An enrolled terminal core with its sync worker running (the cashier app's thread)."""

    def __init__(self, server: LiveServer, path: Path, *, interval: float = NO_POLL_S,
                 server_url: str | None = None, stream_backoff: Backoff | None = None) -> None:
        self.term = Terminal(path, http_timeout=3.0)
        enrolled = self.term.enroll(server_url or server.url, server.enrollment_code(),
                                    path.name)
        assert enrolled.first_snapshot.completed, enrolled.first_snapshot.error
        self.worker = SyncWorker(
            self.term, interval=interval, backoff=Backoff(0.2, 1.0),
            stream_backoff=lambda: stream_backoff or Backoff(0.2, 1.0, random.Random(3)))
        self.worker.start()

    @property
    def listener(self) -> EventListener:
        listener = self.worker.listener
        assert listener is not None, "the worker holds no stream"
        return listener

    def updates(self) -> str:
        return str(self.term.status()["updates"])

    def balance(self, wallet_id: str) -> int | None:
        view = self.term.wallet_view(wallet_id)
        return view.balance_estimate if view else None

    def refusal(self, cashier: str, product: str, uid: str) -> str | None:
        try:
            self.term.record_sale(cashier, [(product, 1)], uid=uid)
        except SaleRefused as exc:
            return exc.code
        return None

    def close(self) -> None:
        self.worker.stop(5)
        self.term.close()


def spendable(school: dict[str, Any]) -> list[dict[str, Any]]:
    """Wallets no offline rule refuses a water to (no limit, not frozen, not restricted)."""
    return [w for w in school["wallets"] if w["status"] == "active"
            and w["daily_limit"] is None and not any(w["restrictions"].values())]


@pytest.fixture
def server(db_factory: DatabaseFactory) -> Iterator[LiveServer]:
    live = LiveServer(db_factory.new(), json.loads(json.dumps(db_factory.demo)))
    live.start()
    yield live
    live.stop()


def test_a_top_up_and_a_blocked_bracelet_arrive_live(server: LiveServer,
                                                     tmp_path: Path) -> None:
    school = server.demo["schools"][0]
    cashier = school["cashiers"][0]["cashier_id"]
    water = next(p for p in school["products"] if p["name"] == "Water 330ml")["product_id"]
    payer, lost = spendable(school)[:2]
    till = Till(server, tmp_path / "till")
    try:
        wait_until(lambda: till.updates() == "live", 10, "the stream is held")
        cycles = till.worker.cycles
        before = till.balance(payer["wallet_id"])
        assert before is not None

        top_up(server.url, payer["wallet_id"], 2500)
        took = wait_until(lambda: till.balance(payer["wallet_id"]) == before + 2500,
                          LIVE_WITHIN_S, "the top-up shows in the wallet view")
        print(f"top-up reached the till in {took:.3f} s")

        assert till.refusal(cashier, water, lost["credential_uid"]) is None  # sells before
        block_in_console(server, school, lost["credential_uid"])
        took = wait_until(lambda: till.term.wallet_for_uid(lost["credential_uid"])
                          .credential_status == "blocked",  # type: ignore[union-attr]
                          LIVE_WITHIN_S, "the blocked bracelet is known at the till")
        print(f"the blocked bracelet reached the till in {took:.3f} s")
        assert till.refusal(cashier, water, lost["credential_uid"]) == "credential_blocked"

        # Only events woke the worker (its poll is 600 s), and only a few times: the sale
        # woke it once more. Still live, one connection all along.
        assert till.worker.event_cycles >= 2
        assert till.worker.cycles - cycles <= 6
        assert till.updates() == "live" and till.listener.attempts == 1
    finally:
        till.close()


class Proxy:
    """A TCP proxy in front of the server that counts the till's requests by their request
    line and, with ``pass_events=False``, answers the event stream 502 (a proxy or firewall
    that cannot hold a long response). The stream has an HTTP client of its own, so the first
    request line of a connection says whether it is the stream's."""

    def __init__(self, upstream_port: int, *, pass_events: bool = True) -> None:
        self.upstream_port = upstream_port
        self.pass_events = pass_events
        self.refused = 0
        self.seen: dict[str, int] = {}      # "POST /api/v1/sync/sales" -> requests
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def count(self, request: str) -> int:
        with self._lock:
            return self.seen.get(request, 0)

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        first = client.recv(65536)
        if not self.pass_events and first.startswith(b"GET /api/v1/sync/events"):
            self.refused += 1
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n"
                           b"Connection: close\r\n\r\n")
            client.close()
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            client.close()
            return
        self._note(first)
        upstream.sendall(first)
        threading.Thread(target=_pipe, args=(client, upstream, self._note),
                         daemon=True).start()
        _pipe(upstream, client)

    def _note(self, data: bytes) -> None:
        """Request lines at the start of what the till sent (a request is sent in one go)."""
        line = data.split(b"\r\n", 1)[0].decode("latin-1")
        method, _, rest = line.partition(" ")
        if method in ("GET", "POST") and rest.startswith("/"):
            request = f"{method} {rest.split(' ')[0].split('?')[0]}"
            with self._lock:
                self.seen[request] = self.seen.get(request, 0) + 1


def _pipe(source: socket.socket, target: socket.socket,
          note: Callable[[bytes], None] | None = None) -> None:
    try:
        while data := source.recv(65536):
            if note is not None:
                note(data)
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def test_with_the_stream_cut_polling_still_brings_both(live_server: LiveServer,
                                                       tmp_path: Path) -> None:
    server = live_server
    school = server.demo["schools"][0]
    cashier = school["cashiers"][0]["cashier_id"]
    water = next(p for p in school["products"] if p["name"] == "Water 330ml")["product_id"]
    payer, lost = spendable(school)[:2]
    proxy = Proxy(server.port, pass_events=False)
    till = Till(server, tmp_path / "till", interval=0.5, server_url=proxy.url,
                stream_backoff=Backoff(rng=random.Random(5)))   # the real defaults, 2..60 s
    try:
        wait_until(lambda: proxy.refused >= 1, 10, "the till tried the stream")
        before = till.balance(payer["wallet_id"])
        assert before is not None
        top_up(server.url, payer["wallet_id"], 1500)
        block_in_console(server, school, lost["credential_uid"])
        wait_until(lambda: till.balance(payer["wallet_id"]) == before + 1500, 5,
                   "the top-up came by polling")
        wait_until(lambda: till.refusal(cashier, water, lost["credential_uid"])
                   == "credential_blocked", 5, "the block came by polling")
        assert till.updates() == "polling" and not till.listener.live
        assert till.term.status()["server_reachable"] is True
        # The stream is retried with backoff, not in a loop: over these seconds, a few tries.
        assert 1 <= till.listener.attempts <= 5, till.listener.attempts
        wait_until(lambda: proxy.refused == till.listener.attempts, 2,
                   "every try reached the proxy")
    finally:
        till.close()
        proxy.close()


def test_an_event_pulls_without_an_empty_push_but_sends_queued_sales(
        live_server: LiveServer, tmp_path: Path) -> None:
    server = live_server
    school = server.demo["schools"][0]
    cashier = school["cashiers"][0]["cashier_id"]
    water = next(p for p in school["products"] if p["name"] == "Water 330ml")["product_id"]
    payer, buyer = spendable(school)[:2]
    proxy = Proxy(server.port)
    till = Till(server, tmp_path / "till", server_url=proxy.url)
    push, pull = "POST /api/v1/sync/sales", "GET /api/v1/sync/snapshot"
    try:
        wait_until(lambda: till.updates() == "live", 10, "the stream is held")
        wait_until(lambda: till.worker.event_cycles >= 1, 5, "the first event's pull")
        pushes, pulls = proxy.count(push), proxy.count(pull)
        before = till.balance(payer["wallet_id"])
        assert before is not None
        top_up(server.url, payer["wallet_id"], 300)
        wait_until(lambda: till.balance(payer["wallet_id"]) == before + 300, LIVE_WITHIN_S,
                   "the top-up arrives")
        assert proxy.count(pull) > pulls
        assert proxy.count(push) == pushes          # nothing queued: no empty push

        # A sale the worker was not woken for (no wake() here) goes with the next event.
        till.term.record_sale(cashier, [(water, 1)], uid=buyer["credential_uid"])
        top_up(server.url, payer["wallet_id"], 300)
        wait_until(lambda: till.term.status()["queued"] == 0, LIVE_WITHIN_S,
                   "the queued sale went with the event's cycle")
        assert proxy.count(push) == pushes + 1
    finally:
        till.close()
        proxy.close()


def test_a_live_tills_sale_is_pushed_and_pulled_once_by_its_event(
        live_server: LiveServer, tmp_path: Path) -> None:
    """While the stream is live a sale's cycle only pushes; the event the push causes brings
    the one pull (before, the cycle pulled and then the event pulled again)."""
    server = live_server
    school = server.demo["schools"][0]
    cashier = school["cashiers"][0]["cashier_id"]
    water = next(p for p in school["products"] if p["name"] == "Water 330ml")
    buyer = spendable(school)[0]
    proxy = Proxy(server.port)
    till = Till(server, tmp_path / "till", server_url=proxy.url)
    push, pull = "POST /api/v1/sync/sales", "GET /api/v1/sync/snapshot"
    try:
        wait_until(lambda: till.updates() == "live", 10, "the stream is held")
        wait_until(lambda: till.worker.event_cycles >= 1, 5, "the first event's pull")
        time.sleep(0.5)
        pushes, pulls = proxy.count(push), proxy.count(pull)
        before = till.balance(buyer["wallet_id"])
        assert before is not None
        till.term.record_sale(cashier, [(water["product_id"], 1)],
                              uid=buyer["credential_uid"])
        till.worker.wake()
        wait_until(lambda: proxy.count(pull) > pulls, LIVE_WITHIN_S, "the event's pull")
        wait_until(lambda: till.term.status()["queued"] == 0, LIVE_WITHIN_S, "the push")
        time.sleep(1.0)  # anything else would have come by now
        assert proxy.count(push) == pushes + 1
        assert proxy.count(pull) == pulls + 1
        # the pulled balance holds the sale once (not subtracted again as pending)
        assert till.balance(buyer["wallet_id"]) == before - water["price"]
    finally:
        till.close()
        proxy.close()


def test_the_stream_comes_back_after_a_server_restart(live_server: LiveServer,
                                                      tmp_path: Path) -> None:
    server = live_server
    payer = spendable(server.demo["schools"][0])[0]
    till = Till(server, tmp_path / "till")
    try:
        wait_until(lambda: till.updates() == "live", 10, "the stream is held")
        server.stop()
        wait_until(lambda: till.updates() == "polling", 10, "the stream is down")
        time.sleep(1.0)  # a few reconnect attempts against a closed port
        down_attempts = till.listener.attempts
        assert down_attempts >= 2
        server.start()                      # same port, same database
        took = wait_until(lambda: till.updates() == "live", 10, "the stream is back")
        print(f"stream back {took:.2f} s after the server; {down_attempts} tries while down")
        assert till.listener.attempts > down_attempts

        before = till.balance(payer["wallet_id"])
        assert before is not None
        top_up(server.url, payer["wallet_id"], 700)
        wait_until(lambda: till.balance(payer["wallet_id"]) == before + 700, LIVE_WITHIN_S,
                   "a top-up after the restart arrives live")
    finally:
        till.close()


def test_a_revoked_tills_stream_ends_and_is_not_retried(live_server: LiveServer,
                                                        tmp_path: Path) -> None:
    server = live_server
    till = Till(server, tmp_path / "till")
    try:
        wait_until(lambda: till.updates() == "live", 10, "the stream is held")
        listener = till.listener
        revoke(server, str(till.term.status()["device_id"]))
        # The stream ends; the reconnect is answered 403 device-revoked; the listener stops
        # and the worker's cycle records and shows it (selling stops).
        wait_until(lambda: till.term.status()["auth_problem"] == "revoked", 10,
                   "the till shows it was revoked")
        wait_until(lambda: not listener.running(), 5, "the listener stopped")
        assert listener.refused == "revoked"
        assert till.updates() == "polling"
        assert till.term.selling_stopped() is not None
        time.sleep(2.0)  # would be several reconnects if it kept trying
        assert listener.attempts == 2      # the stream that ended, and the one refusal
        assert till.worker.listener is listener and not listener.running()
    finally:
        till.close()


# ---------------------------------------------------------------------- a hand-written server


class TinySse:
    """A real aiohttp server on a real port that speaks just the events route, in a mode the
    test picks: ``silent`` (the first event, then nothing: a dead link that never errors),
    ``busy`` (503 with Retry-After), ``burst`` (the first event, then 30 at once)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.connections: list[float] = []   # monotonic time of each connection
        self.headers: list[dict[str, str]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        self.connections.append(time.monotonic())
        self.headers.append(dict(request.headers))
        if self.mode == "busy":
            return web.json_response(
                {"type": "https://pos.example/problems/shutting-down", "title": "busy",
                 "status": 503}, status=503, headers={"Retry-After": "1"},
                content_type="application/problem+json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b': ping\n\nevent: snapshot\ndata: {"version": "v1"}\n\n')
        if self.mode == "burst":
            for n in range(30):
                await response.write(f'event: snapshot\ndata: {{"version": "b{n}"}}\n\n'
                                     .encode())
        await asyncio.sleep(3600)  # until the client goes away or the server stops
        return response

    def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/api/v1/sync/events", self._events)
        self._runner = web.AppRunner(app, shutdown_timeout=0.2)
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(
            web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    def close(self) -> None:
        """Stop serving (again: nothing); open streams are cancelled, not waited for."""
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def test_a_silent_stream_is_noticed_and_reopened() -> None:
    sse = TinySse("silent")
    events: list[tuple[str | None, bool]] = []
    listener = EventListener(sse.url, "tok-secret", on_event=lambda v, f: events.append((v, f)),
                             backoff=Backoff(0.05, 0.1), read_timeout=0.6)
    listener.start()
    try:
        wait_until(lambda: len(sse.connections) >= 3, 10, "reconnected after silences")
        assert events[:2] == [("v1", True), ("v1", True)]  # each connection's first event
        gaps = [b - a for a, b in itertools.pairwise(sse.connections)]
        assert all(gap >= 0.6 for gap in gaps), gaps       # the read timeout, not sooner
        first = sse.headers[0]
        assert first["Authorization"] == "Bearer tok-secret"
        assert first["Accept"] == "text/event-stream"
        assert first["User-Agent"].startswith("cafeteria-pos-terminal/")
        started = time.monotonic()
        listener.stop(5)                    # wakes the blocked read at once
        assert not listener.running() and time.monotonic() - started < 1.0
    finally:
        listener.stop()
        sse.close()


def test_a_busy_server_is_retried_no_sooner_than_it_asked() -> None:
    sse = TinySse("busy")
    listener = EventListener(sse.url, "tok", on_event=lambda v, f: None,
                             backoff=Backoff(0.01, 5.0))
    listener.start()
    try:
        wait_until(lambda: len(sse.connections) >= 3, 10, "retried twice")
        gaps = [b - a for a, b in itertools.pairwise(sse.connections)]
        assert all(gap >= 0.95 for gap in gaps), gaps      # Retry-After: 1
        assert not listener.live and listener.refused is None
    finally:
        listener.stop()
        sse.close()


class EventsOnly(Terminal):
    """A core whose sync cycle is counted, not run: the worker's coalescing is what is under
    test, against a real stream. (The real cycle is in the tests above.)"""

    def __init__(self, path: Path, server_url: str) -> None:
        from terminal.store import state

        super().__init__(path)
        state.save_device(self.db, state.Device(
            device_id="dev", device_token="tok", school_id="sch", currency="SAR",
            server_url=server_url, name="t", enrolled_at=datetime.now(UTC).isoformat()))
        self.pulls: list[tuple[float, bool]] = []
        self.push_only: list[bool] = []   # per cycle, as self.pulls

    def sync_once(self, *, pull_only: bool = False, push_only: bool = False) -> Any:
        from terminal.sync.cycle import SyncReport

        self.pulls.append((time.monotonic(), pull_only))
        self.push_only.append(push_only)
        time.sleep(0.1)  # a pull takes a moment; events keep arriving meanwhile
        return SyncReport(reached=True, completed=True)


def test_a_burst_of_events_gives_a_few_pulls(tmp_path: Path) -> None:
    sse = TinySse("burst")
    term = EventsOnly(tmp_path / "t", sse.url)
    worker = SyncWorker(term, interval=NO_POLL_S, min_pull_gap=0.2)
    worker.start()
    try:
        wait_until(lambda: len(sse.connections) == 1 and term.status()["updates"] == "live",
                   10, "the stream is held")
        wait_until(lambda: len(term.pulls) >= 2, 5, "the events woke the worker")
        time.sleep(1.0)  # nothing more arrives: no more pulls
        pulls = list(term.pulls)
        # the first full cycle, then 31 events coalesced into one or two pulls
        assert pulls[0][1] is False
        assert 2 <= len(pulls) <= 3, pulls
        assert all(only for _, only in pulls[1:])
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(pulls[1:])]
        # the gap runs from just before a cycle starts, these stamps from inside it: a
        # millisecond of slack for the clock, not for the rule
        assert all(gap >= 0.19 for gap in gaps), gaps
        assert not any(term.push_only[:len(pulls)])
        worker.wake()                        # a sale: a push at once, and no pull: the
        wait_until(lambda: len(term.pulls) == len(pulls) + 1, 2, "the sale's cycle")
        assert term.pulls[-1][1] is False    # stream is live, its event will bring the pull
        assert term.push_only[-1] is True
    finally:
        worker.stop(5)
        term.close()
        sse.close()


def test_the_poll_waits_long_while_live_and_resumes_when_the_stream_drops(
        tmp_path: Path) -> None:
    sse = TinySse("silent")  # the first event, then a quiet but open stream
    term = EventsOnly(tmp_path / "t", sse.url)
    worker = SyncWorker(term, interval=0.2, safety_interval=1.0)
    worker.start()
    try:
        wait_until(lambda: term.status()["updates"] == "live", 10, "the stream is held")
        time.sleep(0.5)             # the first event's pull is done
        mark = len(term.pulls)
        time.sleep(2.5)
        live = term.pulls[mark:]
        # a safety poll a second (plus the 0.1 s pull), not one every 0.2 s
        assert 1 <= len(live) <= 3, live
        assert not any(only for _, only in live)   # polls push too
        assert not any(term.push_only[mark:])      # and pull too

        sse.close()                 # the stream drops: polling at the short interval again
        wait_until(lambda: term.status()["updates"] == "polling", 5, "the stream is down")
        mark = len(term.pulls)
        time.sleep(1.5)
        assert len(term.pulls) - mark >= 4, term.pulls[mark:]
    finally:
        worker.stop(5)
        term.close()
        sse.close()
