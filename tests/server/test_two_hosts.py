"""Two server hosts on one PostgreSQL database, behind HAProxy (issue 14).

Each "host" is a real ``pos-server serve --workers 2`` (an arbiter and two worker processes)
on its own port; Debian's HAProxy balances between them with health checks, as a district
would run it. The tills are real terminal cores (their own SQLite files, outbox and seqs)
with the real sync worker, which holds the event stream and pulls on each event.

What must hold: a top-up that arrives at host A reaches a till streaming from host B (the
change travels through PostgreSQL's NOTIFY, not through either process), and when one host
dies outright (SIGKILL to its arbiter and workers at once) the tills carry on through the
other: every sale recorded at a till is on the server exactly once, the ledger audits clean
and the streams come back (a top-up after the kill reaches every till with no sale or poll
to fetch it).

PostgreSQL only: SQLite is one file on one machine, so it has no second host.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import sqlalchemy as sa

from shared.health import wait_until_healthy
from sync_server import records
from sync_server.api.webhooks import sign
from sync_server.storage.engine import create_engine
from terminal.core import Terminal
from terminal.errors import SaleRefused
from terminal.sync.backoff import Backoff
from terminal.sync.worker import SyncWorker
from tests.conftest import WEBHOOK_SECRET, DatabaseFactory, free_port

from .serve_process import Served, serve

pytestmark = pytest.mark.postgres

HAPROXY = shutil.which("haproxy")
PROPAGATION_LIMIT_S = 2.0


# ------------------------------------------------------------------ the balancer


def haproxy_config(port: int, hosts: list[str], log_dir: Path) -> str:
    """The layout docs/server.md recommends, with checks quick enough for a test: a host is
    out after two failed health checks 300 ms apart. An event stream is one long response:
    ``timeout server``/``timeout client`` (inactivity) must outlast the server's pings."""
    servers = "\n".join(
        f"    server host{i} {url.removeprefix('http://')} check inter 300ms fall 2 rise 1"
        for i, url in enumerate(hosts))
    return f"""global
    maxconn 4096
    pidfile {log_dir / 'haproxy.pid'}

defaults
    mode http
    option httplog
    option forwardfor
    option redispatch
    retries 3
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 10s

frontend pos
    bind 127.0.0.1:{port}
    default_backend hosts

backend hosts
    balance leastconn
    option httpchk GET /api/v1/health
    http-check expect status 200
{servers}
"""


@contextmanager
def balancer(hosts: list[str], workdir: Path) -> Iterator[str]:
    assert HAPROXY is not None
    port = free_port()
    config = workdir / "haproxy.cfg"
    config.write_text(haproxy_config(port, hosts, workdir))
    log = (workdir / "haproxy.log").open("wb")
    process = subprocess.Popen([HAPROXY, "-f", str(config), "-db"], stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process=process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def kill_host(host: Served) -> None:
    """The host is gone at once, as when its machine loses power: SIGKILL to the arbiter and
    its workers together, so no process finishes a request or says goodbye."""
    family = [host.process.pid, *(c.pid for c in psutil.Process(host.process.pid).children())]
    for pid in family:
        try:
            psutil.Process(pid).send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    host.process.wait(timeout=10)


# ------------------------------------------------------------------ small helpers


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds it took for ``predicate`` to hold; fails naming ``what`` after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - start


def top_up(url: str, wallet_id: str, amount: int, currency: str = "SAR") -> None:
    """A signed ``payment.completed`` webhook, as the gateway sends it."""
    body = json.dumps({
        "event_id": f"evt_{uuid.uuid4().hex}", "event_type": "payment.completed",
        "reference": f"pay_{uuid.uuid4().hex}", "wallet_id": wallet_id, "amount": amount,
        "currency": currency, "created_at": datetime.now(UTC).isoformat()}).encode()
    stamp = str(int(time.time()))
    resp = httpx.post(f"{url}/api/v1/webhooks/payments", content=body, timeout=10, headers={
        "Content-Type": "application/json", "X-Timestamp": stamp,
        "X-Signature": sign(WEBHOOK_SECRET, stamp, body)})
    assert resp.status_code == 200, resp.text


def enrollment_codes(db_url: str, school_id: str, count: int) -> list[str]:
    async def make() -> list[str]:
        engine = create_engine(db_url)
        try:
            async with engine.begin() as conn:
                return [await records.create_enrollment_code(conn, school_id,
                                                             timedelta(hours=1))
                        for _ in range(count)]
        finally:
            await engine.dispose()
    return asyncio.run(make())


def server_sales(db_url: str, device_ids: list[str]) -> list[tuple[str, int, str]]:
    async def read() -> list[tuple[str, int, str]]:
        from sync_server.storage.schema import sales

        engine = create_engine(db_url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(sa.select(sales.c.ref, sales.c.total, sales.c.status)
                                          .where(sales.c.device_id.in_(device_ids)))
                return [(r.ref, r.total, r.status) for r in rows]
        finally:
            await engine.dispose()
    return asyncio.run(read())


def till_refs(till: Terminal) -> dict[str, int]:
    return {row.ref: row.total for row in till.history(limit=1_000_000)}


def wallet_balance(till: Terminal, wallet_id: str) -> int | None:
    view = till.wallet_view(wallet_id)
    return None if view is None else view.balance_estimate


# ------------------------------------------------------------------ fixtures


@dataclass
class Fleet:
    db_url: str
    school: dict[str, Any]
    hosts: list[Served]
    balancer: str


@pytest.fixture(scope="module")
def fleet(pg_factory: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory,
          ) -> Iterator[Fleet]:
    """One fleet for the module: starting four server processes and a balancer is most of
    the time here. The host-killing test runs last (file order)."""
    if HAPROXY is None:
        pytest.skip("haproxy not installed: apt-get install haproxy (packaging/dev test "
                    "installs it)")
    workdir = tmp_path_factory.mktemp("two-hosts")
    db_url = pg_factory.new()
    school = pg_factory.demo["schools"][0]
    # Production settings otherwise: a killed host's streams end when its sockets close
    # (the kernel resets them), not by a missed ping.
    env = {"POS_WORKERS": "2"}
    with ExitStack() as stack:
        hosts = [stack.enter_context(serve(db_url, workdir, env=env)) for _ in range(2)]
        url = stack.enter_context(balancer([h.url for h in hosts], workdir))
        yield Fleet(db_url, school, hosts, url)


# ------------------------------------------------------------------ the tests


def streaming_worker(till: Terminal) -> SyncWorker:
    """The cashier app's sync worker, holding the event stream; retries kept short so the
    test does not wait out the production backoff after the kill."""
    return SyncWorker(till, interval=0.5, backoff=Backoff(0.1, 0.5),
                      stream_backoff=lambda: Backoff(0.1, 0.5))


def test_a_top_up_through_host_a_reaches_a_till_streaming_from_host_b(
        fleet: Fleet, tmp_path: Path) -> None:
    host_a, host_b = fleet.hosts
    till = Terminal(tmp_path / "till-b")
    till.enroll(host_b.url, enrollment_codes(fleet.db_url, fleet.school["school_id"], 1)[0],
                "Counter B")
    worker = streaming_worker(till)
    worker.start()
    try:
        wait_for(lambda: till.status()["updates"] == "live", 15, "the stream to host B")
        for wallet in fleet.school["wallets"][1:4]:
            before = wallet_balance(till, wallet["wallet_id"])
            assert before is not None
            top_up(host_a.url, wallet["wallet_id"], 500)
            wait_for(lambda w=wallet["wallet_id"], b=before: wallet_balance(till, w) == b + 500,
                     PROPAGATION_LIMIT_S, "top-up at host A shown at the till on host B")
        # Nothing but the stream brought them: the till's own polls are minutes apart now.
        assert worker.event_cycles >= 3
    finally:
        worker.stop()
        till.close()


SELLERS = 4


def test_tills_keep_selling_through_the_other_host_when_one_dies(
        fleet: Fleet, tmp_path: Path) -> None:
    school = fleet.school
    cashier = school["cashiers"][0]["cashier_id"]
    water = school["products"][0]["product_id"]
    # Wallets with no daily limit, not frozen and not restricted: no offline rule refuses.
    buyers = [w for w in school["wallets"] if w["status"] == "active"
              and w["daily_limit"] is None and not any(w["restrictions"].values())]
    tills = [Terminal(tmp_path / f"till-{i}") for i in range(SELLERS)]
    for i, (till, code) in enumerate(zip(tills, enrollment_codes(
            fleet.db_url, school["school_id"], SELLERS), strict=True)):
        till.enroll(fleet.balancer, code, f"Counter {i}")
    workers = [streaming_worker(t) for t in tills]
    stop = threading.Event()
    refused: list[str] = []

    def sell(index: int) -> None:
        till, n = tills[index], 0
        while not stop.is_set():
            buyer = buyers[(index * 7 + n) % len(buyers)]
            try:
                till.record_sale(cashier, [(water, 1)], uid=buyer["credential_uid"])
                workers[index].wake()  # as the cashier app does after a sale
            except SaleRefused as exc:
                refused.append(exc.code)
            n += 1
            stop.wait(0.2)  # a fast cashier: five sales a second
        till.close()

    sellers = [threading.Thread(target=sell, args=(i,), daemon=True) for i in range(SELLERS)]
    try:
        for worker in workers:
            worker.start()
        wait_for(lambda: all(t.status()["updates"] == "live" for t in tills), 15,
                 "every till's stream through the balancer")
        for seller in sellers:
            seller.start()
        wait_for(lambda: all(t.status()["acked_seq"] >= 5 for t in tills), 15,
                 "every till had sales acknowledged")

        attempts = [w.listener.attempts if w.listener else 0 for w in workers]
        kill_host(fleet.hosts[0])
        # Selling goes on through host B; the streams that were on A come back through it.
        wait_for(lambda: any((w.listener.attempts if w.listener else 0) > a
                             for w, a in zip(workers, attempts, strict=True)), 15,
                 "a stream held by the dead host tried again")
        wait_for(lambda: all(t.status()["updates"] == "live" for t in tills), 15,
                 "every till's stream live again through host B")
        acked = [t.status()["acked_seq"] for t in tills]
        wait_for(lambda: all(t.status()["acked_seq"] >= a + 5
                             for t, a in zip(tills, acked, strict=True)), 15,
                 "every till had five more sales acknowledged after the kill")
        stop.set()
        for seller in sellers:
            seller.join(timeout=10)

        # The streams work after the kill: with selling stopped, only an event brings a
        # top-up to the tills before their safety poll, minutes away.
        buyer = buyers[0]["wallet_id"]
        wait_for(lambda: all(t.sync_once().unreachable is False for t in tills), 15,
                 "a sync through host B")
        before = [wallet_balance(t, buyer) for t in tills]
        top_up(fleet.balancer, buyer, 100)
        wait_for(lambda: all(wallet_balance(t, buyer) == b + 100  # type: ignore[operator]
                             for t, b in zip(tills, before, strict=True)),
                 PROPAGATION_LIMIT_S * 2, "the top-up after the kill shown at every till")
    finally:
        stop.set()
        for worker in workers:
            worker.stop()

    # Whatever the dead host had half-done, a final sync settles every till's queue.
    for till in tills:
        wait_for(lambda t=till: t.sync_once().unreachable is False
                 and t.status()["queued"] == 0, 30, "the queue drained through host B")

    recorded = {ref: total for till in tills for ref, total in till_refs(till).items()}
    # Five acknowledged before the kill and five more after, at each till.
    assert len(recorded) >= 10 * SELLERS, f"too few sales to say anything: {len(recorded)}"
    on_server = server_sales(fleet.db_url, [t.status()["device_id"] for t in tills])
    refs = [ref for ref, _, _ in on_server]
    assert len(refs) == len(set(refs)), "a sale is on the server twice"
    assert set(refs) == set(recorded), "a sale recorded at a till is missing on the server"
    assert {status for _, _, status in on_server} == {"applied"}
    assert sum(total for _, total, _ in on_server) == sum(recorded.values())
    assert not refused, f"offline rules refused sales: {sorted(set(refused))}"
    for till in tills:
        assert till.status()["missing_seqs"] == []
        till.close()

    audit = subprocess.run([sys.executable, "-m", "sync_server", "audit-ledger", "--db",
                            fleet.db_url, "--json"], capture_output=True, text=True, timeout=60)
    assert audit.returncode == 0, audit.stderr
    report = json.loads(audit.stdout)
    assert report["ok"]
    assert all(not s["missing_seqs"] for s in report["schools"])
