"""Limits that hold across processes and hosts because they live in the database (issue 14).

Failed enrollments are rows of ``enroll_failures`` (sync_server/ratelimit.py): real server
processes on one database add up one address's failures. The payment reconciliation job
leases payments in their rows (sync_server/reconciliation.py): real server processes on one
database ask the gateway about each payment once.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import utcnow
from shared.health import wait_until_healthy
from shared.protocol import PaymentEvent
from sync_server.app import create_app
from sync_server.config import ServerConfig
from sync_server.ledger.payments import Policy, apply_event
from sync_server.ratelimit import PRUNE_BATCH, FailureLimiter
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import enroll_failures, payments, wallets
from tests.conftest import DatabaseFactory, free_port

from .mock_gateway import API_KEY, MockGateway

LIMIT = ServerConfig().enroll_failures_per_minute


def _enroll(url: str, code: str = "WRONG-CODE0", **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/api/v1/devices/enroll",
                      json={"enrollment_code": code, "name": "x"}, headers=headers, timeout=30)


# ------------------------------------------------------------------ enrollment failures


def test_failures_against_two_processes_add_up_to_one_limit(
        two_servers: tuple[str, list[str]], db_factory: DatabaseFactory) -> None:
    db_url, urls = two_servers
    for i in range(LIMIT):  # alternating: neither process alone sees the limit
        assert _enroll(urls[i % 2]).status_code == 403
    good = db_factory.demo["schools"][0]["enrollment_code"]
    for url in urls:  # both refuse now, even a good code, and say for how long
        limited = _enroll(url, good)
        assert limited.status_code == 429, limited.text
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert limited.headers["Content-Type"].startswith("application/problem+json")
    assert asyncio.run(_failures(db_url)) == LIMIT  # the refused attempts added none


async def _failures(db_url: str) -> int:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(
                sa.select(sa.func.count()).select_from(enroll_failures))).scalar_one())
    finally:
        await engine.dispose()


async def test_an_ipv6_client_is_counted_by_its_64(aiohttp_client: Any, db_url: str) -> None:
    """One subscriber holds a whole /64: changing address within it does not buy guesses."""
    client = await aiohttp_client(create_app(ServerConfig(db_url=db_url,
                                                          trusted_proxies="127.0.0.1")))

    async def attempt(address: str) -> int:
        resp = await client.post("/api/v1/devices/enroll",
                                 json={"enrollment_code": "WRONG-CODE0", "name": "x"},
                                 headers={"X-Forwarded-For": address})
        return int(resp.status)

    statuses = [await attempt(f"2001:db8:0:7::{i + 1:x}") for i in range(LIMIT)]
    assert statuses == [403] * LIMIT
    assert await attempt("2001:db8:0:7:ffff::1") == 429
    assert await attempt("2001:db8:0:8::1") == 403  # the next /64 is another client


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(db_url)
    yield eng
    await eng.dispose()


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


async def test_the_wait_ends_when_the_limit_th_latest_failure_leaves_the_window(
        engine: AsyncEngine) -> None:
    start = datetime(2030, 1, 1, 8, tzinfo=UTC)
    clock = Clock(start)
    limiter = FailureLimiter(3, clock=clock)
    for second in (0, 10, 20, 30):  # four failures, one more than the limit (a race)
        clock.at = start + timedelta(seconds=second)
        async with engine.begin() as conn:
            await limiter.fail(conn, "192.0.2.1")

    async def wait_at(second: float, address: str = "192.0.2.1") -> int | None:
        clock.at = start + timedelta(seconds=second)
        async with engine.connect() as conn:
            return await limiter.retry_after(conn, address)

    # The 3rd latest failure (at 10 s) leaves the window at 70 s; the oldest one does not
    # decide, as three failures remain in the window after it leaves.
    assert await wait_at(30) == 40
    assert await wait_at(60.5) == 10
    assert await wait_at(69.2) == 1
    assert await wait_at(70) is None
    assert await wait_at(30, "192.0.2.2") is None  # per address


async def test_each_failure_prunes_a_bounded_batch_of_expired_rows(
        engine: AsyncEngine) -> None:
    now = utcnow()
    old = now - timedelta(minutes=5)
    async with engine.begin() as conn:
        await conn.execute(sa.insert(enroll_failures), [
            {"address": f"198.51.100.{i % 200}", "at": old} for i in range(PRUNE_BATCH + 30)])
        await conn.execute(sa.insert(enroll_failures).values(address="198.51.100.1",
                                                             at=now - timedelta(seconds=30)))
    limiter = FailureLimiter(10, clock=lambda: now)

    async def remaining() -> tuple[int, int]:
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.select(enroll_failures.c.at))).scalars().all()
        return sum(at < now - limiter.window for at in rows), len(rows)

    async with engine.begin() as conn:
        await limiter.fail(conn, "203.0.113.9")
    assert await remaining() == (30, 32)  # at most PRUNE_BATCH gone; the window's rows kept
    async with engine.begin() as conn:
        await limiter.fail(conn, "203.0.113.9")
    assert await remaining() == (0, 3)


# ------------------------------------------------------------------ payment reconciliation


@pytest.fixture
async def gateway() -> AsyncIterator[MockGateway]:
    gw = MockGateway()
    await gw.start()
    yield gw
    await gw.close()


async def test_two_processes_ask_the_gateway_about_each_payment_once(
        db_url: str, demo: dict[str, Any], gateway: MockGateway, tmp_path: Path) -> None:
    """Two real ``serve`` processes with the job on, started together on one database with
    payments pending: each payment is asked about and credited once."""
    school = demo["schools"][0]
    engine = create_engine(db_url)
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Any] = []
    try:
        policy = Policy(hold_above=500_000, check_pending_after=timedelta(0))
        wallet_ids = [w["wallet_id"] for w in school["wallets"][30:42]]
        before = [await _balance(engine, w) for w in wallet_ids]
        payment_ids = []
        for i, wallet_id in enumerate(wallet_ids):
            outcome = await apply_event(engine.begin, PaymentEvent(
                event_id=f"evt_pending_two_{i}", event_type="payment.pending",
                reference=f"ref_two_{i}", wallet_id=wallet_id, amount=900 + i,
                currency=school["currency"], created_at=utcnow()),
                source="webhook", policy=policy)
            assert outcome.payment_id
            payment_ids.append(outcome.payment_id)
            gateway.settle(f"ref_two_{i}", amount=900 + i,
                           currency=school["currency"])
        gateway.delay = 0.5  # each look-up outlasts the other process's start-up
        env = {**os.environ, "POS_GATEWAY_URL": gateway.url, "POS_GATEWAY_API_KEY": API_KEY,
               "POS_PAYMENT_PENDING_MINUTES": "0"}
        urls = []
        for i in range(2):
            port = free_port()
            logs.append((tmp_path / f"server{i}.log").open("w"))
            procs.append(await asyncio.to_thread(
                subprocess.Popen, [sys.executable, "-m", "sync_server", "serve", "--db", db_url,
                                   "--port", str(port)],
                stdout=logs[-1], stderr=subprocess.STDOUT, env=env))
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):  # the gateway answers meanwhile
            await asyncio.to_thread(wait_until_healthy, url, process=proc)

        deadline = time.monotonic() + 60
        while await _states(engine, payment_ids) != {"completed"}:
            assert time.monotonic() < deadline, await _states(engine, payment_ids)
            await asyncio.sleep(0.1)
        assert dict(gateway.asked) == {f"ref_two_{i}": 1 for i in range(len(wallet_ids))}
        after = [await _balance(engine, w) for w in wallet_ids]
        assert [a - b for a, b in zip(after, before, strict=True)] == [
            900 + i for i in range(len(wallet_ids))]
        # Which process applied which is up to timing (4 and 8 in our runs); once in all.
        applied = [(tmp_path / f"server{i}.log").read_text().count("the gateway says")
                   for i in range(2)]
        assert sum(applied) == len(wallet_ids), applied
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            await asyncio.to_thread(proc.wait, 30)
        for log in logs:
            log.close()
        await engine.dispose()


async def _states(engine: AsyncEngine, payment_ids: list[str]) -> set[str]:
    async with engine.connect() as conn:
        return set((await conn.execute(sa.select(payments.c.state).where(
            payments.c.payment_id.in_(payment_ids)))).scalars())


async def _balance(engine: AsyncEngine, wallet_id: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(sa.select(wallets.c.balance).where(
            wallets.c.wallet_id == wallet_id))).scalar_one())
