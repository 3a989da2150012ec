"""Payments left pending, checked against a real (mock) gateway over HTTP: SQLite and PostgreSQL.

The job is driven two ways: as objects on an engine with a clock the test moves (backoff,
leases and restarts without waiting), and inside the real app, where it runs on its own.
Payments are made pending by ``apply_event`` (the webhook's path) with a ``payment.pending``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.clock import utcnow
from shared.protocol import PaymentEvent
from sync_server.app import create_app
from sync_server.config import ServerConfig
from sync_server.gateway import GatewayAnswer, GatewayStatus, GatewayUnavailable, HttpGatewayStatus
from sync_server.ledger.audit import audit
from sync_server.ledger.payments import Policy, apply_event
from sync_server.reconciliation import LEASE, Backoff, Reconciliation
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import payment_events, payments, wallets
from tests.conftest import WEBHOOK_SECRET

from .mock_gateway import API_KEY, MockGateway

POLICY = Policy()  # pending payments are checked after 30 minutes
LIMIT = POLICY.check_pending_after


class Clock:
    """The job's clock: real time moved on by ``offset`` (the ledger stamps real time)."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def __call__(self) -> datetime:
        return utcnow() + self.offset


@pytest.fixture
async def gateway() -> AsyncIterator[MockGateway]:
    gw = MockGateway()
    await gw.start()
    yield gw
    await gw.close()


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(db_url)
    yield eng
    await eng.dispose()


def job_on(engine: AsyncEngine, gateway: MockGateway, clock: Clock, *, timeout: float = 5,
           **options: Any) -> Reconciliation:
    """A job on ``engine`` asking ``gateway``. The look-up timeout is generous (a loaded CI
    machine once took over 0.5 s to answer the first local request); the tests about time-outs
    pass a short one."""
    options.setdefault("rand", lambda: 0.5)
    return Reconciliation(engine.begin, HttpGatewayStatus(gateway.url, API_KEY, timeout=timeout),
                          POLICY, clock=clock, **options)


async def make_pending(engine: AsyncEngine, wallet_id: str, reference: str, amount: int = 5000,
                       policy: Policy = POLICY) -> str:
    outcome = await apply_event(engine.begin, PaymentEvent(
        event_id=f"evt_pending_{reference}", event_type="payment.pending", reference=reference,
        wallet_id=wallet_id, amount=amount, currency="SAR", created_at=utcnow()),
        source="webhook", policy=policy)
    assert outcome.status == "recorded" and outcome.payment_id
    return outcome.payment_id


async def payment(engine: AsyncEngine, payment_id: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(payments).where(
            payments.c.payment_id == payment_id))).one()


async def balance(engine: AsyncEngine, wallet_id: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(sa.select(wallets.c.balance).where(
            wallets.c.wallet_id == wallet_id))).scalar_one())


async def events_of(engine: AsyncEngine, payment_id: str) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(sa.select(payment_events).where(
            payment_events.c.payment_id == payment_id)
            .order_by(payment_events.c.received_at))).all())


def close_to(moment: datetime | None, expected: datetime) -> bool:
    return moment is not None and abs(moment - expected) < timedelta(seconds=5)


async def test_a_payment_pending_past_the_limit_is_credited_once(
        engine: AsyncEngine, gateway: MockGateway, demo: dict[str, Any]) -> None:
    wallet_id = demo["schools"][0]["wallets"][2]["wallet_id"]
    before = await balance(engine, wallet_id)
    payment_id = await make_pending(engine, wallet_id, "ref_once")
    gateway.settle("ref_once", amount=5000)
    clock = Clock(LIMIT - timedelta(minutes=1))
    job = job_on(engine, gateway, clock)

    assert await job.run_once() == 0  # not pending long enough: the gateway is not asked
    assert gateway.asked["ref_once"] == 0

    clock.offset = LIMIT + timedelta(minutes=1)
    assert await job.run_once() == 1
    assert await balance(engine, wallet_id) == before + 5000
    row = await payment(engine, payment_id)
    assert (row.state, row.credited, row.check_attempts) == ("completed", 5000, 1)
    assert row.next_check_at is None and row.lease_until is None and row.last_check_error is None
    applied = (await events_of(engine, payment_id))[-1]
    assert (applied.event_id, applied.event_type, applied.source, applied.status) == (
        f"recon:{payment_id}:completed", "payment.completed", "reconciliation", "credited")

    assert await job.run_once() == 0  # settled: never asked again
    assert gateway.asked["ref_once"] == 1
    assert gateway.bearers == {f"Bearer {API_KEY}"}

    # The gateway's own webhook, late after all: recorded, not credited a second time.
    late = await apply_event(engine.begin, PaymentEvent(
        event_id="evt_late", event_type="payment.completed", reference="ref_once",
        wallet_id=wallet_id, amount=5000, currency="SAR", created_at=utcnow()),
        source="webhook", policy=POLICY)
    assert (late.status, late.code) == ("recorded", "already_credited")
    assert await balance(engine, wallet_id) == before + 5000
    assert (await audit(engine))["ok"] is True


async def test_errors_and_timeouts_back_off_then_the_payment_is_credited(
        engine: AsyncEngine, gateway: MockGateway, demo: dict[str, Any]) -> None:
    wallet_id = demo["schools"][0]["wallets"][3]["wallet_id"]
    before = await balance(engine, wallet_id)
    payment_id = await make_pending(engine, wallet_id, "ref_flaky", 2500)
    gateway.settle("ref_flaky", amount=2500)
    gateway.fail_next("ref_flaky", "500", "hang", "junk")
    clock = Clock(LIMIT + timedelta(minutes=1))
    # rand 0.5: three quarters of 1, 2, then (capped) 3 minutes
    job = job_on(engine, gateway, clock, timeout=0.3,
                 backoff=Backoff(first=timedelta(minutes=1), longest=timedelta(minutes=3)))

    for attempt, (error, wait) in enumerate([("gateway answered HTTP 500", 45),
                                             ("timeout", 90),
                                             ("unreadable answer (not JSON)", 135)], 1):
        assert await job.run_once() == 1
        row = await payment(engine, payment_id)
        assert (row.state, row.check_attempts, row.last_check_error) == (
            "pending", attempt, error)
        assert close_to(row.next_check_at, clock() + timedelta(seconds=wait))
        assert row.lease_until is None
        assert await job.run_once() == 0  # not due before its backoff is over
        assert gateway.asked["ref_flaky"] == attempt
        assert await balance(engine, wallet_id) == before
        clock.offset += timedelta(seconds=wait + 1)

    assert await job.run_once() == 1  # the gateway has recovered
    row = await payment(engine, payment_id)
    assert (row.state, row.check_attempts, row.last_check_error) == ("completed", 4, None)
    assert await balance(engine, wallet_id) == before + 2500
    assert await job.run_once() == 0
    assert gateway.asked["ref_flaky"] == 4


async def test_another_amount_is_held_for_review_not_credited(
        engine: AsyncEngine, gateway: MockGateway, demo: dict[str, Any]) -> None:
    wallet_id = demo["schools"][0]["wallets"][4]["wallet_id"]
    before = await balance(engine, wallet_id)
    payment_id = await make_pending(engine, wallet_id, "ref_other_amount", 5000)
    gateway.settle("ref_other_amount", amount=50_000)
    job = job_on(engine, gateway, Clock(LIMIT + timedelta(minutes=1)))

    assert await job.run_once() == 1
    row = await payment(engine, payment_id)
    assert (row.state, row.hold_reason, row.credited) == ("held", "amount_changed", 0), (
        row.last_check_error)
    assert row.next_check_at is None
    held = (await events_of(engine, payment_id))[-1]
    assert (held.status, held.code, held.amount, held.source) == (
        "held", "amount_changed", 50_000, "reconciliation")
    assert await balance(engine, wallet_id) == before
    assert await job.run_once() == 0  # an admin decides now, not the job


async def test_answers_that_credit_nothing(engine: AsyncEngine, gateway: MockGateway,
                                          demo: dict[str, Any]) -> None:
    wallets_ = [w["wallet_id"] for w in demo["schools"][0]["wallets"][5:8]]
    before = [await balance(engine, w) for w in wallets_]
    failed = await make_pending(engine, wallets_[0], "ref_failed")
    still = await make_pending(engine, wallets_[1], "ref_still")
    unknown = await make_pending(engine, wallets_[2], "ref_unknown")
    gateway.settle("ref_failed", amount=5000, status="failed")
    gateway.settle("ref_still", amount=5000, status="pending")
    clock = Clock(LIMIT + timedelta(minutes=1))
    job = job_on(engine, gateway, clock)

    assert await job.run_once() == 3
    assert (await payment(engine, failed)).state == "failed"
    for payment_id, note in [(still, "still pending at the gateway"),
                             (unknown, "the gateway does not know this reference")]:
        row = await payment(engine, payment_id)
        assert (row.state, row.check_attempts, row.last_check_error) == ("pending", 1, note)
        assert close_to(row.next_check_at, clock() + timedelta(seconds=45))
    assert [await balance(engine, w) for w in wallets_] == before


class CommitHeld:
    """``engine.begin``, except that the first transaction (a job's first claim) waits before
    committing until the test lets it: so another job looks for due payments meanwhile."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine, self.first = engine, True
        self.waiting, self.release = asyncio.Event(), asyncio.Event()

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[AsyncConnection]:
        first, self.first = self.first, False
        async with self.engine.begin() as conn:
            yield conn
            if first:
                self.waiting.set()
                await self.release.wait()


async def test_two_jobs_on_one_database_check_each_payment_once(
        db_url: str, gateway: MockGateway, demo: dict[str, Any]) -> None:
    engines = [create_engine(db_url), create_engine(db_url)]
    try:
        wallet_ids = [w["wallet_id"] for w in demo["schools"][0]["wallets"][10:16]]
        before = [await balance(engines[0], w) for w in wallet_ids]
        for i, wallet_id in enumerate(wallet_ids):
            await make_pending(engines[0], wallet_id, f"ref_race_{i}", 1000 + i)
            gateway.settle(f"ref_race_{i}", amount=1000 + i)
        gateway.delay = 0.2
        clock = Clock(LIMIT + timedelta(minutes=1))
        held = CommitHeld(engines[0])
        first = Reconciliation(held, HttpGatewayStatus(gateway.url, API_KEY, timeout=5),
                               POLICY, clock=clock, parallel=4)
        second = job_on(engines[1], gateway, clock, timeout=5, parallel=4)

        # The first job has leased four payments but not committed; the second looks now.
        running = [asyncio.create_task(first.run_once())]
        await asyncio.wait_for(held.waiting.wait(), 5)
        running.append(asyncio.create_task(second.run_once()))
        await asyncio.sleep(0.3)
        held.release.set()
        checked = await asyncio.gather(*running)

        assert sum(checked) == 6
        assert dict(gateway.asked) == {f"ref_race_{i}": 1 for i in range(6)}
        after = [await balance(engines[0], w) for w in wallet_ids]
        assert [a - b for a, b in zip(after, before, strict=True)] == [1000 + i
                                                                        for i in range(6)]
        assert (await audit(engines[0]))["ok"] is True
    finally:
        for e in engines:
            await e.dispose()


async def test_a_restart_keeps_the_backoff_and_a_dead_process_loses_its_lease(
        db_url: str, gateway: MockGateway, demo: dict[str, Any]) -> None:
    wallet_id = demo["schools"][0]["wallets"][8]["wallet_id"]
    clock = Clock(LIMIT + timedelta(minutes=1))
    gateway.settle("ref_restart", amount=3000)
    gateway.fail_next("ref_restart", "500", "hang")

    first = create_engine(db_url)  # process 1: one failed check, then it stops
    payment_id = await make_pending(first, wallet_id, "ref_restart", 3000)
    before = await balance(first, wallet_id)
    assert await job_on(first, gateway, clock).run_once() == 1
    await first.dispose()

    second = create_engine(db_url)  # process 2: honours the backoff it finds in the database
    job = job_on(second, gateway, clock, timeout=30)
    assert await job.run_once() == 0
    clock.offset += timedelta(minutes=1)
    gateway.started.clear()
    checking = asyncio.create_task(job.run_once())  # ... and dies in the middle of a look-up
    await asyncio.wait_for(gateway.started.wait(), 5)
    checking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await checking
    await second.dispose()

    third = create_engine(db_url)
    try:
        row = await payment(third, payment_id)
        assert row.state == "pending" and row.check_attempts == 1
        assert close_to(row.lease_until, clock() + LEASE)
        job = job_on(third, gateway, clock)
        assert await job.run_once() == 0  # the dead process's lease still holds
        clock.offset += LEASE
        assert await job.run_once() == 1
        row = await payment(third, payment_id)
        assert (row.state, row.check_attempts, row.lease_until) == ("completed", 2, None)
        assert await balance(third, wallet_id) == before + 3000
        assert gateway.asked["ref_restart"] == 3
    finally:
        await third.dispose()


# ------------------------------------------------------------------ the job inside the app


def app_config(db_url: str, gateway: MockGateway) -> ServerConfig:
    return ServerConfig(db_url=db_url, webhook_secret=WEBHOOK_SECRET, gateway_url=gateway.url,
                        gateway_api_key=API_KEY, payment_pending_minutes=0)


async def wait_for_state(engine: AsyncEngine, payment_ids: list[str], state: str,
                         within: float = 15) -> None:
    deadline = time.monotonic() + within
    while True:
        states = [(await payment(engine, p)).state for p in payment_ids]
        if all(s == state for s in states):
            return
        assert time.monotonic() < deadline, states
        await asyncio.sleep(0.05)


async def test_two_apps_on_one_database_check_each_payment_once(
        aiohttp_client: Any, engine: AsyncEngine, db_url: str, gateway: MockGateway,
        demo: dict[str, Any]) -> None:
    config = app_config(db_url, gateway)
    wallet_ids = [w["wallet_id"] for w in demo["schools"][0]["wallets"][20:25]]
    ids = [await make_pending(engine, w, f"ref_apps_{i}", 700, config.payment_policy)
           for i, w in enumerate(wallet_ids)]
    for i in range(5):
        gateway.settle(f"ref_apps_{i}", amount=700)
    gateway.delay = 0.2
    before = [await balance(engine, w) for w in wallet_ids]

    await asyncio.gather(aiohttp_client(create_app(config)), aiohttp_client(create_app(config)))
    await wait_for_state(engine, ids, "completed")
    assert dict(gateway.asked) == {f"ref_apps_{i}": 1 for i in range(5)}
    assert [await balance(engine, w) for w in wallet_ids] == [b + 700 for b in before]


async def test_requests_are_served_while_the_gateway_is_slow(
        aiohttp_client: Any, engine: AsyncEngine, db_url: str, gateway: MockGateway,
        demo: dict[str, Any]) -> None:
    config = app_config(db_url, gateway)
    wallet_id = demo["schools"][0]["wallets"][9]["wallet_id"]
    payment_id = await make_pending(engine, wallet_id, "ref_slow", 900, config.payment_policy)
    gateway.settle("ref_slow", amount=900)
    gateway.delay = 5.0

    client = await aiohttp_client(create_app(config))
    await asyncio.wait_for(gateway.started.wait(), 10)  # the job is in its look-up now
    started = time.monotonic()
    for _ in range(5):
        resp = await client.get("/api/v1/health")
        assert resp.status == 200
    assert time.monotonic() - started < 1.0  # five answers while the look-up waits 5 s
    assert gateway.in_flight == 1

    started = time.monotonic()
    await client.close()  # shutdown does not wait for the look-up
    assert time.monotonic() - started < 2.0
    row = await payment(engine, payment_id)
    assert row.state == "pending" and row.lease_until is not None  # retried after the lease


async def test_without_a_gateway_url_there_is_no_job(
        aiohttp_client: Any, engine: AsyncEngine, db_url: str, demo: dict[str, Any]) -> None:
    config = ServerConfig(db_url=db_url, webhook_secret=WEBHOOK_SECRET,
                          payment_pending_minutes=0)
    wallet_id = demo["schools"][0]["wallets"][9]["wallet_id"]
    payment_id = await make_pending(engine, wallet_id, "ref_off", 900, config.payment_policy)
    client = await aiohttp_client(create_app(config))
    assert (await client.get("/api/v1/health")).status == 200
    await asyncio.sleep(0.3)
    assert (await payment(engine, payment_id)).check_attempts == 0


# ------------------------------------------------------------------ failures inside the job


class BrokenTransactions:
    """``engine.begin``, except that the first ``failures`` transactions fail to open."""

    def __init__(self, engine: AsyncEngine, failures: int) -> None:
        self.engine, self.failures = engine, failures

    def __call__(self) -> Any:
        if self.failures:
            self.failures -= 1
            raise OperationalError("BEGIN", {}, Exception("database is down\nsecond line"))
        return self.engine.begin()


class AlwaysCompleted(GatewayStatus):
    """A hand-written fake gateway: every reference completed for its first amount."""

    def __init__(self, amount: int) -> None:
        self.amount, self.asked = amount, 0

    async def status(self, reference: str) -> GatewayAnswer | None:
        self.asked += 1
        if self.asked == 1:
            raise RuntimeError("a bug in a gateway client")
        return GatewayAnswer(reference=reference, status="completed", amount=self.amount,
                             currency="SAR", updated_at=datetime(2026, 11, 22, tzinfo=UTC))


async def test_failures_cost_a_log_line_never_the_loop(
        engine: AsyncEngine, demo: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    wallet_id = demo["schools"][0]["wallets"][11]["wallet_id"]
    payment_id = await make_pending(engine, wallet_id, "ref_broken", 1200)
    clock = Clock(LIMIT + timedelta(minutes=1))
    fake = AlwaysCompleted(1200)
    job = Reconciliation(BrokenTransactions(engine, 1), fake, POLICY, clock=clock,
                         lease=timedelta(0))
    caplog.set_level(logging.WARNING, logger="sync_server.reconciliation")
    task = asyncio.create_task(job.run_forever(interval=0.01))
    try:
        await wait_for_state(engine, [payment_id], "completed", within=10)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    warnings = [r.getMessage() for r in caplog.records if r.name == "sync_server.reconciliation"]
    assert len(warnings) == 2, warnings
    assert "database is down" in warnings[0] and "\n" not in warnings[0]
    assert "a bug in a gateway client" in warnings[1]
    assert fake.asked == 2


# ------------------------------------------------------------------ the pieces


def test_backoff_doubles_up_to_the_longest_with_half_of_it_random() -> None:
    backoff = Backoff(first=timedelta(minutes=1), longest=timedelta(hours=6))
    assert backoff.delay(0, 0.0) == timedelta(seconds=30)
    assert backoff.delay(0, 1.0) == timedelta(minutes=1)
    assert backoff.delay(3, 1.0) == timedelta(minutes=8)
    assert backoff.delay(50, 1.0) == timedelta(hours=6)
    assert backoff.delay(50, 0.0) == timedelta(hours=3)


async def test_the_http_client_sends_its_key_and_reads_only_sound_answers(
        gateway: MockGateway) -> None:
    good = HttpGatewayStatus(gateway.url, API_KEY)
    wrong = HttpGatewayStatus(gateway.url, "not-the-key")
    try:
        gateway.settle("ref/with space", amount=10)
        answer = await good.status("ref/with space")
        assert answer is not None and (answer.status, answer.amount) == ("completed", 10)
        assert await good.status("ref_nobody_knows") is None
        with pytest.raises(GatewayUnavailable) as refused:
            await wrong.status("ref/with space")
        assert refused.value.reason == "gateway answered HTTP 401"
        gateway.answers["ref_float"] = {**gateway.answers["ref/with space"],
                                        "reference": "ref_float", "amount": 10.5}
        with pytest.raises(GatewayUnavailable) as unreadable:
            await good.status("ref_float")
        assert unreadable.value.reason == "unreadable answer (amount)"
    finally:
        await good.aclose()
        await wrong.aclose()
    closed = HttpGatewayStatus("http://127.0.0.1:1/gw", API_KEY, timeout=1)
    with pytest.raises(GatewayUnavailable) as down:
        await closed.status("ref")
    assert down.value.reason == "network error (ConnectError)"
    await closed.aclose()
