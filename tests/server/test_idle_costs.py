"""An idle terminal costs the server no writes (issue 14), on both databases.

A till's idle cycle is an empty push (to learn acked_seq) and a snapshot delta; both used to
write ``devices.last_seen_at`` in a write transaction. The statements the app's own engine
sends are counted at the cursor: idle cycles send no INSERT, UPDATE, DELETE, row lock or (on
SQLite) ``BEGIN IMMEDIATE``; the contacts reach the database in one batched UPDATE
(sync_server/presence.py), which never moves a later contact back, and on shutdown.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.health import wait_until_healthy
from sync_server.config import ServerConfig
from sync_server.keys import engine_key, presence_key, write_lock_key
from sync_server.ledger.sales import DeviceNotActive, apply_push
from sync_server.presence import Presence
from sync_server.records import create_enrollment_code, revoke_device
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import devices
from tests.conftest import WEBHOOK_SECRET, DatabaseFactory, free_port

from .helpers import SentStatements, auth, enroll, push, sale, snapshot

DEVICES, CYCLES = 10, 20
WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|BEGIN\s+IMMEDIATE)\b|\bFOR\s+UPDATE\b",
                   re.IGNORECASE)


@pytest.fixture
def server_config(db_url: str) -> ServerConfig:
    """No timed flush during a test: flushes happen when the test asks (or at shutdown)."""
    return ServerConfig(db_url=db_url, webhook_secret=WEBHOOK_SECRET, secure_cookies=False,
                        presence_flush_seconds=3600)


class Writes(SentStatements):
    """Write statements an engine sends to its driver, as sent."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, WRITE.search)

    def dml(self) -> list[str]:
        return [s for s in self.statements if not re.match(r"\s*BEGIN", s, re.IGNORECASE)]


@pytest.fixture
def writes(client: Any) -> Iterator[Writes]:
    counter = Writes(client.server.app[engine_key])
    yield counter
    counter.close()


async def _enroll_many(client: Any, school_id: str, n: int) -> list[dict[str, Any]]:
    async with client.server.app[engine_key].begin() as conn:
        codes = [await create_enrollment_code(conn, school_id, timedelta(hours=1))
                 for _ in range(n)]
    return [await enroll(client, code, name=f"Counter {i}") for i, code in enumerate(codes)]


async def _device_rows(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(devices.c.device_id, devices.c.last_seen_at,
                                            devices.c.last_push_at, devices.c.acked_seq,
                                            devices.c.app_version))
        return {r.device_id: r for r in rows}


async def test_idle_cycles_write_nothing_until_one_batched_flush(
        client: Any, writes: Writes, demo: dict[str, Any]) -> None:
    app = client.server.app
    enrolled = await _enroll_many(client, demo["schools"][0]["school_id"], DEVICES)
    cursors = {d["device_id"]: (await snapshot(client, d["device_token"]))["cursor"]
               for d in enrolled}
    await app[presence_key].flush(app[engine_key], app.get(write_lock_key))  # those snapshots
    before = await _device_rows(app[engine_key])
    writes.statements.clear()

    for _ in range(CYCLES):
        for d in enrolled:
            answer = await push(client, d["device_token"], [])
            assert (answer["results"], answer["acked_seq"], answer["missing_seqs"]) == ([], 0, [])
            page = await snapshot(client, d["device_token"], cursors[d["device_id"]])
            assert not page["full"]
            cursors[d["device_id"]] = page["cursor"]
    assert writes.statements == [], f"{len(writes.statements)} writes while idle"

    flushed = await app[presence_key].flush(app[engine_key], app.get(write_lock_key))
    assert flushed == DEVICES
    # One UPDATE for every device; on PostgreSQL after one SELECT locking the rows no other
    # transaction holds (SKIP LOCKED: a flush never waits for a push, see presence.flush).
    dml = [st.lstrip().upper() for st in writes.dml()]
    assert [st for st in dml if st.startswith("UPDATE")] == dml[-1:], dml
    assert all("SKIP LOCKED" in st for st in dml[:-1]) and len(dml) <= 2, dml
    after = await _device_rows(app[engine_key])
    for d in enrolled:
        was, now = before[d["device_id"]], after[d["device_id"]]
        assert now.last_seen_at > was.last_seen_at
        assert now.app_version and "aiohttp" in now.app_version.lower()  # the client's agent
    writes.statements.clear()
    assert await app[presence_key].flush(app[engine_key], app.get(write_lock_key)) == 0
    assert writes.statements == []


async def test_a_sale_push_records_at_once(client: Any, writes: Writes,
                                           demo: dict[str, Any]) -> None:
    app = client.server.app
    school = demo["schools"][0]
    [device] = await _enroll_many(client, school["school_id"], 1)
    enrolled_at = (await _device_rows(app[engine_key]))[device["device_id"]].last_seen_at

    answer = await push(client, device["device_token"], [sale(school, 1)])
    assert answer["results"][0]["status"] == "applied" and answer["acked_seq"] == 1
    row = (await _device_rows(app[engine_key]))[device["device_id"]]
    assert row.acked_seq == 1
    assert row.last_push_at is not None and row.last_push_at >= enrolled_at
    assert row.last_seen_at > enrolled_at
    # The next empty push reads what that push wrote, and writes nothing itself.
    writes.statements.clear()
    again = await push(client, device["device_token"], [])
    assert (again["acked_seq"], again["missing_seqs"]) == (1, [])
    gap = await push(client, device["device_token"], [sale(school, 3)])
    assert (gap["acked_seq"], gap["missing_seqs"]) == (1, [2])
    writes.statements.clear()
    assert (await push(client, device["device_token"], []))["missing_seqs"] == [2]
    assert writes.statements == []


async def test_an_empty_push_of_a_revoked_device_is_refused(
        client: Any, demo: dict[str, Any]) -> None:
    app = client.server.app
    [device] = await _enroll_many(client, demo["schools"][0]["school_id"], 1)
    async with app[engine_key].begin() as conn:
        await revoke_device(conn, device["device_id"])
    # Through the API the token check answers first; the ledger refuses on its own too (a
    # revocation between the two).
    resp = await client.post("/api/v1/sync/sales", json={"sales": []},
                             headers=auth(device["device_token"]))
    assert resp.status == 403
    with pytest.raises(DeviceNotActive):
        await apply_push(app[engine_key], device["school_id"], device["device_id"], [])


async def test_flushes_from_two_processes_never_move_last_seen_back(
        client: Any, db_url: str, demo: dict[str, Any]) -> None:
    """Each process (here: its own engine and Presence) flushes what it saw, in any order."""
    [device] = await _enroll_many(client, demo["schools"][0]["school_id"], 1)
    device_id = device["device_id"]
    first, second = create_engine(db_url), create_engine(db_url)
    try:
        early, late = datetime(2030, 1, 1, 8, tzinfo=UTC), datetime(2030, 1, 1, 9, tzinfo=UTC)
        behind, ahead = Presence(clock=lambda: early), Presence(clock=lambda: late)
        behind.seen(device_id, "till 1.0")
        ahead.seen(device_id, "till 2.0")
        assert await ahead.flush(second) == 1
        assert await behind.flush(first) == 1  # runs (one statement) but changes nothing
        async with first.connect() as conn:
            row = (await conn.execute(sa.select(devices.c.last_seen_at, devices.c.app_version)
                                      .where(devices.c.device_id == device_id))).one()
        assert (row.last_seen_at, row.app_version) == (late, "till 2.0")
    finally:
        await first.dispose()
        await second.dispose()


async def test_a_flush_skips_a_device_a_push_holds_and_writes_it_next_time(
        client: Any, db_url: str, demo: dict[str, Any]) -> None:
    """A push holds its device's row until it commits. The flush must not wait for it: while
    waiting it held every row it had already updated, so pushes queued behind it, and two
    processes' flushes deadlocked. On PostgreSQL the held device is skipped and written by
    the next flush; SQLite has one writer at a time, so there is nothing to skip."""
    if not db_url.startswith("postgresql"):
        pytest.skip("row locks are PostgreSQL's; SQLite runs one writer at a time")
    held, free = await _enroll_many(client, demo["schools"][0]["school_id"], 2)
    engine, pusher = create_engine(db_url), create_engine(db_url)
    at = datetime(2030, 1, 1, 8, tzinfo=UTC)
    presence = Presence(clock=lambda: at)
    try:
        async with pusher.begin() as push_conn:
            await push_conn.execute(sa.select(devices.c.device_id).where(
                devices.c.device_id == held["device_id"]).with_for_update())
            presence.seen(held["device_id"], "till 1.0")
            presence.seen(free["device_id"], "till 1.0")
            assert await asyncio.wait_for(presence.flush(engine), 5) == 1
            assert len(presence) == 1  # the held one waits for the next flush
        assert await presence.flush(engine) == 1 and len(presence) == 0
        async with engine.connect() as conn:
            seen = dict((await conn.execute(
                sa.select(devices.c.device_id, devices.c.last_seen_at).where(
                    devices.c.device_id.in_([held["device_id"], free["device_id"]])))).all())
        assert seen == {held["device_id"]: at, free["device_id"]: at}
    finally:
        await engine.dispose()
        await pusher.dispose()


@pytest.mark.parametrize("workers", [1, 2])
def test_shutdown_flushes_what_was_seen(db_factory: DatabaseFactory, tmp_path: Any,
                                        workers: int) -> None:
    """A real ``serve``: contacts wait in memory, and SIGTERM writes them (with ``--workers``,
    gunicorn passes the signal on and each worker's app shuts down the same way)."""
    db_url, school_id = db_factory.new(), db_factory.demo["schools"][0]["school_id"]
    code = json.loads(subprocess.run(
        [sys.executable, "-m", "sync_server", "enrollment-code", "--db", db_url, "--school",
         school_id, "--json"], capture_output=True, text=True, check=True).stdout)[
        "enrollment_code"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "sync_server", "serve", "--db", db_url,
                             "--port", str(port), "--workers", str(workers)],
                            stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "POS_PRESENCE_FLUSH_SECONDS": "3600"})
    try:
        wait_until_healthy(url, process=proc)
        device = httpx.post(f"{url}/api/v1/devices/enroll",
                            json={"enrollment_code": code, "name": "Counter 1"})
        assert device.status_code == 201, device.text
        token, device_id = device.json()["device_token"], device.json()["device_id"]
        enrolled = asyncio.run(_last_seen(db_url, device_id))
        headers = {**auth(token), "User-Agent": "till/9.9 test"}
        for _ in range(3):
            assert httpx.post(f"{url}/api/v1/sync/sales", json={"sales": []},
                              headers=headers).status_code == 200
            assert httpx.get(f"{url}/api/v1/sync/snapshot", headers=headers).status_code == 200
        assert asyncio.run(_last_seen(db_url, device_id)) == enrolled  # not written yet
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    last_seen, version = asyncio.run(_last_seen(db_url, device_id))
    assert last_seen > enrolled[0] and version == "till/9.9 test"


async def _last_seen(db_url: str, device_id: str) -> tuple[datetime, str | None]:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(sa.select(devices.c.last_seen_at, devices.c.app_version)
                                      .where(devices.c.device_id == device_id))).one()
            return row.last_seen_at, row.app_version
    finally:
        await engine.dispose()
