"""Outbound webhooks end to end: the real app's delivery job POSTs to a real aiohttp receiver
on its own port, on SQLite and PostgreSQL.

The receiver fails (500), then outlasts the sender's timeout, then answers 200: the event is
delivered, signed with the endpoint's secret over "<ts>.<body>", each try recorded and spaced
by at least the configured base. A server stopped mid-delivery and a new one on the same
database deliver what was pending; two jobs on one database never send one delivery twice at
once; every event type reaches the endpoints subscribed to it and no other.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from shared.clock import utcnow
from sync_server.app import create_app
from sync_server.config import ServerConfig
from sync_server.notify.delivery import Delivery, Schedule
from sync_server.notify.outbox import emit
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import (
    payments,
    webhook_attempts,
    webhook_deliveries,
    webhook_events,
)
from tests.admin.test_webhook import deliver, event
from tests.conftest import WEBHOOK_SECRET

from .helpers import enroll, push, sale
from .webhook_receiver import Receiver, add_endpoint, wait_for

BASE = 0.2  # webhook_retry_base_seconds in these tests
TIMEOUT = 0.5


def fast(db_url: str, **extra: Any) -> ServerConfig:
    values: dict[str, Any] = {
        "db_url": db_url, "webhook_secret": WEBHOOK_SECRET, "secure_cookies": False,
        "webhook_retry_base_seconds": BASE, "webhook_retry_max_seconds": 1.0,
        "webhook_timeout_seconds": TIMEOUT, "webhook_poll_seconds": 0.05,
        "webhooks_allow_http": True, **extra}
    return ServerConfig(**values)


@pytest.fixture
def server_config(db_url: str) -> ServerConfig:
    return fast(db_url)


@pytest.fixture
async def receiver() -> Any:
    r = await Receiver().start()
    yield r
    await r.stop()


def states(event_type: str | None = None) -> sa.Select[Any]:
    stmt = (sa.select(webhook_deliveries.c.state, webhook_deliveries.c.attempts)
            .join(webhook_events, webhook_events.c.event_id == webhook_deliveries.c.event_id))
    if event_type:
        stmt = stmt.where(webhook_events.c.event_type == event_type)
    return stmt.order_by(webhook_deliveries.c.delivery_id)


async def top_up(client: Any, school: dict[str, Any], n: int = 1, amount: int = 5000) -> str:
    body = event(school["wallets"][1]["wallet_id"], f"evt_top_{n}", amount=amount,
                 currency=school["currency"], reference=f"ref-top-{n}")
    resp = await deliver(client, body)
    assert resp.status == 200, await resp.text()
    return str(body["reference"])


async def test_fails_times_out_then_succeeds_signed_and_spaced(
        client: Any, demo: dict[str, Any], db_url: str, receiver: Receiver) -> None:
    school = demo["schools"][0]
    _, secret = await add_endpoint(db_url, school["school_id"], receiver.url,
                                   ("payment.credited",))
    receiver.script = [500, TIMEOUT * 3]  # then 200
    await top_up(client, school)
    await wait_for(db_url, states(), [("delivered", 3)])
    payment_id = (await wait_for(db_url, sa.select(payments.c.payment_id),
                                 lambda r: len(r) == 1))[0][0]

    assert len(receiver.calls) == 3
    bodies = {c.body for c in receiver.calls}
    assert len(bodies) == 1  # the same event each time
    sent = receiver.calls[0].json
    assert sent["type"] == "payment.credited" and sent["id"].startswith("evt")
    assert sent["school_id"] == school["school_id"] and sent["created_at"].endswith("Z")
    assert sent["data"] == {"payment_id": payment_id, "reference": "ref-top-1",
                            "wallet_id": school["wallets"][1]["wallet_id"], "amount": 5000,
                            "currency": school["currency"],
                            "balance_after": sent["data"]["balance_after"]}
    assert isinstance(sent["data"]["balance_after"], int)
    for call in receiver.calls:
        assert call.signed_by(secret)
        assert not call.signed_by(secret + "x")
        assert call.headers["X-Event-Id"] == sent["id"]
        assert call.headers["X-Event-Type"] == "payment.credited"
    # Spacing: at least the base after a 500; after the timeout, the timeout plus the base.
    # Upper bounds are loose ("not stuck"): the machine is shared.
    first, second, third = (c.at for c in receiver.calls)
    assert BASE * 0.9 <= second - first < 10
    assert TIMEOUT + BASE * 0.9 <= third - second < 10

    tries = await wait_for(db_url, sa.select(webhook_attempts.c.status_code,
                                             webhook_attempts.c.error)
                           .order_by(webhook_attempts.c.attempt_id), lambda r: len(r) == 3)
    assert [t.status_code for t in tries] == [500, None, 200]
    assert tries[0].error == "HTTP 500" and "no answer within" in tries[1].error
    assert tries[2].error is None


async def test_gives_up_after_max_attempts_and_never_follows_redirects(
        aiohttp_client: Any, demo: dict[str, Any], db_url: str, receiver: Receiver) -> None:
    client = await aiohttp_client(create_app(fast(db_url, webhook_max_attempts=2)))
    school = demo["schools"][0]
    await add_endpoint(db_url, school["school_id"], receiver.url, ("payment.credited",))
    receiver.script = [302, 302, 302]
    await top_up(client, school)
    await wait_for(db_url, states(), [("failed", 2)])
    await asyncio.sleep(BASE * 3)
    assert len(receiver.calls) == 2  # no third try, and no request to a redirect target
    errors = await wait_for(db_url, sa.select(webhook_deliveries.c.last_error),
                            lambda r: len(r) == 1)
    assert "redirects are not followed" in errors[0][0]


async def test_a_restart_loses_nothing(aiohttp_client: Any, demo: dict[str, Any],
                                       db_url: str, receiver: Receiver) -> None:
    """The first server fails once, then is stopped while its second POST hangs (holding the
    lease); a new server on the same database delivers at once: the stopped one gave its
    lease back. A third delivery waits in the queue across the restart."""
    school = demo["schools"][0]
    await add_endpoint(db_url, school["school_id"], receiver.url, ("payment.credited",))
    first = await aiohttp_client(create_app(fast(db_url, webhook_timeout_seconds=30.0)))
    receiver.script = [500, 20.0, 20.0]
    await top_up(first, school, 1)
    await wait_for(db_url, states(), [("pending", 1)])
    deadline = asyncio.get_running_loop().time() + 20
    while len(receiver.calls) < 2:  # the second try is in flight, unanswered
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    await first.close()
    # Queued while no server runs: written by another app's webhook handler later, below.
    receiver.script = []
    second = await aiohttp_client(create_app(fast(db_url)))
    await top_up(second, school, 2)
    rows = await wait_for(db_url, states(), lambda r: [s for s, _ in r] == ["delivered"] * 2,
                          seconds=20)
    assert sorted(n for _, n in rows) == [1, 2]  # the cancelled try was not recorded
    ids = {c.headers["X-Event-Id"] for c in receiver.calls}
    assert len(ids) == 2  # both events arrived; the first one more than once (at least once)


async def test_every_event_type_reaches_subscribed_endpoints_only(
        client: Any, demo: dict[str, Any], db_url: str, receiver: Receiver) -> None:
    school, other = demo["schools"][0], demo["schools"][1]
    everything = await Receiver().start()
    try:
        await add_endpoint(db_url, school["school_id"], everything.url)
        await add_endpoint(db_url, school["school_id"], receiver.url, ("payment.credited",))
        theirs = await Receiver().start()
        try:
            await add_endpoint(db_url, other["school_id"], theirs.url)
            await top_up(client, school)
            dev = await enroll(client, school["enrollment_code"])
            one = sale(school, 1, wallet=2)
            await push(client, dev["device_token"], [one])
            engine = create_engine(db_url)
            try:
                async with engine.begin() as conn:
                    await emit(conn, school_id=school["school_id"],
                               event_type="wallet.low_balance",
                               data={"wallet_id": "w", "student_number": "S1", "balance": 100,
                                     "threshold": 500, "currency": school["currency"]},
                               dedupe_key="low_balance:w:2026-01-01")
                    await emit(conn, school_id=school["school_id"],
                               event_type="bracelet.blocked",
                               data={"wallet_id": "w", "student_number": "S1",
                                     "uid_masked": "04****01", "reason": "lost"})
                    # The same dedupe key again: told once.
                    assert await emit(conn, school_id=school["school_id"],
                                      event_type="wallet.low_balance", data={},
                                      dedupe_key="low_balance:w:2026-01-01") is None
            finally:
                await engine.dispose()
            await wait_for(db_url, states(), lambda r: len(r) == 5
                           and all(s == "delivered" for s, _ in r))
        finally:
            await theirs.stop()
        assert theirs.calls == []  # another school's endpoint hears nothing of this one's
    finally:
        await everything.stop()
    assert sorted(c.json["type"] for c in everything.calls) == sorted(
        ["payment.credited", "sale.applied", "wallet.low_balance", "bracelet.blocked"])
    assert [c.json["type"] for c in receiver.calls] == ["payment.credited"]
    applied = everything.of_type("sale.applied")[0].json["data"]
    assert applied["ref"] == one["ref"] and applied["kind"] == "sale"
    assert applied["device_id"] == dev["device_id"] and applied["total"] == one["total"]
    assert applied["wallet_id"] == one["wallet_id"]
    assert isinstance(applied["balance_after"], int) and applied["business_day"]
    assert set(applied) == {"ref", "wallet_id", "device_id", "kind", "total",
                            "balance_after", "business_day", "created_at"}


async def test_no_sale_applied_event_without_a_subscriber(
        client: Any, demo: dict[str, Any], db_url: str, receiver: Receiver) -> None:
    school = demo["schools"][0]
    await add_endpoint(db_url, school["school_id"], receiver.url, ("payment.credited",))
    dev = await enroll(client, school["enrollment_code"])
    await push(client, dev["device_token"], [sale(school, 1, wallet=2)])
    await top_up(client, school)
    rows = await wait_for(db_url, sa.select(webhook_events.c.event_type),
                          lambda r: ("payment.credited",) in r)
    assert ("sale.applied",) not in rows  # (the demo's seeding may have told other events)


async def test_two_jobs_never_send_one_delivery_at_once(
        aiohttp_client: Any, demo: dict[str, Any], db_url: str, receiver: Receiver) -> None:
    """Two delivery jobs (two engines, as two processes have) race over 20 due deliveries
    whose receiver is slow: each is POSTed once. A lease left by a dead process is honoured
    until it expires."""
    school = demo["schools"][0]
    await add_endpoint(db_url, school["school_id"], receiver.url, ("bracelet.blocked",))
    engines = [create_engine(db_url, pool_size=2) for _ in range(2)]
    sessions = [aiohttp.ClientSession() for _ in range(2)]
    try:
        async with engines[0].begin() as conn:
            for n in range(21):
                await emit(conn, school_id=school["school_id"], event_type="bracelet.blocked",
                           data={"n": n})
            dead = (await conn.execute(sa.select(webhook_deliveries.c.delivery_id)
                                       .limit(1))).scalar_one()
            await conn.execute(sa.update(webhook_deliveries)
                               .where(webhook_deliveries.c.delivery_id == dead)
                               .values(lease_until=utcnow() + timedelta(seconds=2)))
        receiver.script = [0.1] * 21
        jobs = [Delivery(e.begin, e.connect, s, Schedule(timeout=5.0), parallel=4)
                for e, s in zip(engines, sessions, strict=True)]
        tried = await asyncio.gather(*(job.run_once() for job in jobs))
        assert sum(tried) == 20  # the leased one waits
        ids = [c.headers["X-Event-Id"] for c in receiver.calls]
        assert len(ids) == len(set(ids)) == 20
        await asyncio.sleep(2.1)
        assert sum(await asyncio.gather(*(job.run_once() for job in jobs))) == 1
    finally:
        for s in sessions:
            await s.close()
        for e in engines:
            await e.dispose()
    rows = await wait_for(db_url, states(), lambda r: len(r) == 21)
    assert all(r == ("delivered", 1) for r in rows)


def test_backoff_waits_between_base_and_the_doubling_cap() -> None:
    s = Schedule(base=timedelta(seconds=30), longest=timedelta(hours=1))
    assert s.delay(1, 0.0) == timedelta(seconds=30)
    assert s.delay(1, 1.0) == timedelta(seconds=60)
    assert s.delay(3, 1.0) == timedelta(seconds=240)
    assert s.delay(3, 0.5) == timedelta(seconds=135)
    assert s.delay(20, 1.0) == timedelta(hours=1)
    assert s.delay(20, 0.0) == timedelta(seconds=30)
