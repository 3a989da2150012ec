"""``GET /api/v1/sync/events`` against the real app, real databases and real server processes.

What a terminal relies on: refused before any stream starts when it may not have one; the
current version at once; a new version within about a second of any change to what it
mirrors, whichever process or host committed it; bursts coalesced; pings at the configured
interval; its stream ended when it is revoked; and a server that stops at once on SIGTERM
however many streams are open.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import sqlalchemy as sa

from sync_server.api.webhooks import sign
from sync_server.config import ServerConfig
from sync_server.events.hub import MIN_READ_GAP_SECONDS, version_text
from sync_server.keys import engine_key, events_hub_key, events_listener_key, presence_key
from sync_server.records import update_settings
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import devices, schools
from tests.admin.conftest import as_role
from tests.admin.test_webhook import deliver, event
from tests.conftest import PG_ADMIN_URL, WEBHOOK_SECRET, DatabaseFactory
from tests.server.serve_process import serve

from .helpers import auth, enroll, push, sale

pytestmark = pytest.mark.timeout(120)
URL = "/api/v1/sync/events"
PING = 0.4  # the tests' ping interval (the default is 15 s)
SOON = 3.0  # how long a test waits for an event it expects (they arrive in well under 1 s)


# ---------------------------------------------------------------------------- an SSE reader

@dataclasses.dataclass
class Message:
    kind: str      # "snapshot" (an event) or "ping" (a comment)
    data: Any
    at: float      # time.monotonic() when it arrived


class EventReader:
    """Reads one server-sent event stream line by line, as a terminal's client would."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.raw: list[bytes] = []

    async def next(self, within: float = SOON) -> Message | None:
        """The next event or comment; None when the stream ended."""
        async with asyncio.timeout(within):
            fields: dict[str, str] = {}
            while True:
                line = await self.response.content.readline()
                if not line:
                    return None
                self.raw.append(line)
                text = line.decode().rstrip("\n")
                if text.startswith(":"):
                    return Message("ping" if text == ": ping" else text, None, time.monotonic())
                if text == "":
                    if fields:
                        return Message(fields.get("event", "message"),
                                       json.loads(fields["data"]), time.monotonic())
                    continue
                name, _, value = text.partition(": ")
                fields[name] = value

    async def event(self, within: float = SOON) -> Message:
        """The next ``snapshot`` event (pings skipped)."""
        deadline = time.monotonic() + within
        while True:
            message = await self.next(max(0.01, deadline - time.monotonic()))
            assert message is not None, "the stream ended"
            if message.kind == "snapshot":
                return message

    async def ended(self, within: float = SOON) -> None:
        deadline = time.monotonic() + within
        while (await self.next(max(0.01, deadline - time.monotonic()))) is not None:
            pass


async def open_stream(http: Any, token: str) -> EventReader:
    response = await http.get(URL, headers=auth(token))
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    return EventReader(response)


async def school_version(db_url: str, school_id: str) -> str:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(sa.select(schools.c.snapshot_epoch, schools.c.version)
                                      .where(schools.c.school_id == school_id))).one()
    finally:
        await engine.dispose()
    return version_text(row.snapshot_epoch, int(row.version))


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sync_server", *args], capture_output=True,
                          text=True, timeout=60)


# ---------------------------------------------------------------------------- in-process app

@pytest.fixture
async def client(aiohttp_client: Any, db_url: str) -> AsyncIterator[Any]:
    """The ``client`` of tests/conftest.py with a short ping interval."""
    from sync_server.app import create_app
    from tests.conftest import WEBHOOK_SECRET
    from tests.contract import watch

    app = create_app(ServerConfig(db_url=db_url, webhook_secret=WEBHOOK_SECRET,
                                  secure_cookies=False, events_ping_seconds=PING))
    broken = watch(app)
    yield await aiohttp_client(app)
    assert not broken, "answers that break the OpenAPI document:\n" + "\n".join(broken[:20])


async def test_refused_before_any_stream_starts(client: Any, demo: dict[str, Any],
                                                db_url: str) -> None:
    missing = await client.get(URL)
    assert missing.status == 401
    assert missing.content_type == "application/problem+json"
    unknown = await client.get(URL, headers=auth("not-a-token"))
    assert unknown.status == 401
    device = await enroll(client, demo["schools"][0]["enrollment_code"])
    assert run_cli("revoke-device", "--db", db_url, "--device",
                   device["device_id"]).returncode == 0
    revoked = await client.get(URL, headers=auth(device["device_token"]))
    assert revoked.status == 403
    assert revoked.content_type == "application/problem+json"
    assert (await revoked.json())["type"].endswith("device-revoked")


async def test_a_stopping_server_opens_no_stream(client: Any, demo: dict[str, Any]) -> None:
    device = await enroll(client, demo["schools"][0]["enrollment_code"])
    stream = await open_stream(client, device["device_token"])
    await stream.event()
    client.server.app[events_hub_key].end_all()  # what the app's on_shutdown does
    await stream.ended(within=1.0)
    again = await client.get(URL, headers=auth(device["device_token"]))
    assert again.status == 503
    assert again.headers["Retry-After"] == "5"
    assert (await again.json())["type"].endswith("shutting-down")


async def test_first_event_then_one_per_change_of_any_kind(client: Any, demo: dict[str, Any],
                                                           db_url: str) -> None:
    school = demo["schools"][0]
    device = await enroll(client, school["enrollment_code"])
    stream = await open_stream(client, device["device_token"])
    first = await stream.event()
    assert first.data == {"version": await school_version(db_url, school["school_id"])}
    seen = [first.data["version"]]
    waits: dict[str, float] = {}

    async def expect_new(what: str) -> None:
        started = time.monotonic()
        message = await stream.event()
        waits[what] = message.at - started
        assert message.data["version"] not in seen, what
        assert message.data == {"version": await school_version(db_url, school["school_id"])}
        seen.append(message.data["version"])

    # A parent's top-up through the signed payment webhook.
    wallet = school["wallets"][2]["wallet_id"]
    answer = await deliver(client, event(wallet, "evt_events_1"))
    assert answer.status == 200, await answer.text()
    await expect_new("top-up")
    # A sale pushed by another till of the school.
    other = await enroll(client, await _code(db_url, school["school_id"]), "Counter 2")
    await push(client, other["device_token"], [sale(school, 1)])
    await expect_new("sale")
    # A bracelet blocked in the console.
    admin = await as_role(client, demo, "admin")
    uid = school["wallets"][1]["credential_uid"]
    blocked = await admin.post(f"/admin/bracelets/{uid}/block", {"reason": "lost"})
    assert blocked.status == 303, await blocked.text()
    await expect_new("bracelet blocked")
    # A settings change, committed by another process (here: another engine).
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await update_settings(conn, school["school_id"], offline_max_sale=1234)
    finally:
        await engine.dispose()
    await expect_new("settings")
    assert all(seconds < 1.5 for seconds in waits.values()), waits
    print("event latency (s):", {k: round(v, 3) for k, v in waits.items()})
    # Versions only: nothing about wallets, balances or bracelets.
    text = b"".join(stream.raw).decode()
    assert wallet not in text and uid not in text and "balance" not in text
    stream.response.close()


async def _code(db_url: str, school_id: str) -> str:
    from tests.server.conftest_helpers import new_code

    return await new_code(db_url, school_id)


async def test_a_burst_of_changes_is_coalesced_and_ends_on_the_final_version(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    device = await enroll(client, school["enrollment_code"])
    stream = await open_stream(client, device["device_token"])
    await stream.event()
    wallet = school["wallets"][3]["wallet_id"]
    started = time.monotonic()
    answers = await asyncio.gather(*(deliver(client, event(wallet, f"evt_burst_{i}",
                                                           amount=100 + i,
                                                           reference=f"pay_burst_{i}"))
                                     for i in range(20)))
    assert [a.status for a in answers] == [200] * 20
    burst = time.monotonic() - started
    final = await school_version(db_url, school["school_id"])
    events = [await stream.event()]
    while events[-1].data["version"] != final:
        events.append(await stream.event())
    quiet = await stream.next(within=3 * PING)  # nothing but pings after the final version
    assert quiet is not None and quiet.kind == "ping"
    print(f"20 top-ups at once, answered in {burst:.2f} s, gave {len(events)} event(s)")
    # At most one read (so one event) per MIN_READ_GAP_SECONDS while the burst lasts, one more
    # after it: far fewer than one event per change, whatever the machine's speed.
    assert len(events) <= min(10, 2 + burst / MIN_READ_GAP_SECONDS), (len(events), burst)
    assert len({e.data["version"] for e in events}) == len(events)  # each one new


async def test_pings_at_the_configured_interval_and_nothing_read_without_streams(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    hub = client.server.app[events_hub_key]
    await asyncio.sleep(3 * PING)
    assert hub.reads == 0  # no stream, no reads (SQLite's watch included)
    device = await enroll(client, demo["schools"][0]["enrollment_code"])
    enrolled_seen = await _last_seen(db_url, device["device_id"])
    stream = await open_stream(client, device["device_token"])
    first = await stream.event()
    pings = []
    while len(pings) < 4:
        message = await stream.next(within=3 * PING)
        assert message is not None and message.kind == "ping", message
        pings.append(message.at)
    gaps = [b - a for a, b in zip([first.at, *pings], pings, strict=False)]
    print("ping gaps (s):", [round(g, 3) for g in gaps])
    assert all(0.8 * PING <= gap <= 2.5 * PING for gap in gaps), gaps
    assert stream.raw.count(b": ping\n") == 4 and stream.raw[-1] == b": ping\n"
    # The stream and its pings note the terminal as seen in memory, and write nothing.
    assert await _last_seen(db_url, device["device_id"]) == enrolled_seen
    presence = client.server.app[presence_key]
    assert await presence.flush(client.server.app[engine_key]) == 1
    assert await _last_seen(db_url, device["device_id"]) > enrolled_seen


async def _last_seen(db_url: str, device_id: str) -> Any:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(sa.select(devices.c.last_seen_at)
                                       .where(devices.c.device_id == device_id))).scalar_one()
    finally:
        await engine.dispose()


async def test_revoking_in_the_console_or_the_cli_ends_the_stream(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    by_console = await enroll(client, school["enrollment_code"], "Counter 5")
    by_cli = await enroll(client, await _code(db_url, school["school_id"]), "Counter 6")
    stays = await enroll(client, await _code(db_url, school["school_id"]), "Counter 7")
    streams = {name: await open_stream(client, d["device_token"]) for name, d in
               (("console", by_console), ("cli", by_cli), ("stays", stays))}
    for stream in streams.values():
        await stream.event()

    admin = await as_role(client, demo, "admin")
    started = time.monotonic()
    resp = await admin.post(f"/admin/devices/{by_console['device_id']}/revoke", {"reason": "x"})
    assert resp.status == 303
    await streams["console"].ended(within=2.5)
    took = {"console": time.monotonic() - started}
    revoked = await asyncio.to_thread(run_cli, "revoke-device", "--db", db_url, "--device",
                                      by_cli["device_id"])
    started = time.monotonic()  # the command has committed and exited
    assert revoked.returncode == 0, revoked.stderr
    await streams["cli"].ended(within=2.5)
    took["cli (after the command exited)"] = time.monotonic() - started
    print("stream ended after revoking (s):", {k: round(v, 3) for k, v in took.items()})
    for device in (by_console, by_cli):
        again = await client.get(URL, headers=auth(device["device_token"]))
        assert again.status == 403
        assert (await again.json())["type"].endswith("device-revoked")
    # The school's other till keeps its stream (it pings on).
    message = await streams["stays"].next(within=3 * PING)
    assert message is not None and message.kind == "ping"


async def test_a_killed_listener_connection_comes_back(client: Any, demo: dict[str, Any],
                                                      db_url: str) -> None:
    app = client.server.app
    if events_listener_key not in app:
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; the [postgresql] case runs this")
    listener = app[events_listener_key]
    school = demo["schools"][0]
    device = await enroll(client, school["enrollment_code"])
    stream = await open_stream(client, device["device_token"])
    await stream.event()
    await wait_until(lambda: listener.backend_pid is not None)
    pid, connects = listener.backend_pid, listener.connects
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    await wait_until(lambda: listener.connects > connects and listener.backend_pid not in
                     (None, pid))
    started = time.monotonic()
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await update_settings(conn, school["school_id"], offline_max_hours=40)
    finally:
        await engine.dispose()
    message = await stream.event()
    assert message.data == {"version": await school_version(db_url, school["school_id"])}
    # Well before the 30 s safety re-check: the notification itself arrived.
    assert time.monotonic() - started < 1.5


async def wait_until(condition: Any, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------------------- real processes

async def _enrolled(http: aiohttp.ClientSession, base: str, db_url: str, school_id: str,
                    name: str) -> dict[str, Any]:
    resp = await http.post(f"{base}/api/v1/devices/enroll",
                           json={"enrollment_code": await _code(db_url, school_id), "name": name})
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def _stream_at(http: aiohttp.ClientSession, base: str, token: str) -> EventReader:
    response = await http.get(f"{base}{URL}", headers=auth(token))
    assert response.status == 200, await response.text()
    return EventReader(response)


async def test_a_change_through_one_server_reaches_a_stream_held_by_another(
        db_factory: DatabaseFactory, tmp_path: Path) -> None:
    """Two `pos-server serve` processes on one database: LISTEN/NOTIFY on PostgreSQL, the
    change counter on SQLite."""
    db_url = await asyncio.to_thread(db_factory.new)  # PostgreSQL: its own event loop
    school = db_factory.demo["schools"][0]
    with serve(db_url, tmp_path) as one, serve(db_url, tmp_path) as two:
        async with aiohttp.ClientSession() as http:
            seller = await _enrolled(http, one.url, db_url, school["school_id"], "Counter 1")
            watcher = await _enrolled(http, two.url, db_url, school["school_id"], "Counter 2")
            stream = await _stream_at(http, two.url, watcher["device_token"])
            seen = [(await stream.event()).data["version"]]
            waits = {}
            started = time.monotonic()
            pushed = await http.post(f"{one.url}/api/v1/sync/sales", headers=auth(
                seller["device_token"]), json={"sales": [sale(school, 1)]})
            assert pushed.status == 200, await pushed.text()
            message = await stream.event()
            waits["sale via server 1"] = message.at - started
            assert message.data["version"] not in seen
            seen.append(message.data["version"])
            started = time.monotonic()
            raw = json.dumps(event(school["wallets"][4]["wallet_id"], "evt_x1")).encode()
            stamp = str(int(time.time()))
            paid = await http.post(f"{one.url}/api/v1/webhooks/payments", data=raw, headers={
                "Content-Type": "application/json", "X-Timestamp": stamp,
                "X-Signature": sign(WEBHOOK_SECRET, stamp, raw)})
            assert paid.status == 200, await paid.text()
            message = await stream.event()
            waits["top-up via server 1"] = message.at - started
            assert message.data == {"version": await school_version(db_url, school["school_id"])}
            assert message.data["version"] not in seen
            stream.response.close()
    print("cross-process latency (s):", {k: round(v, 3) for k, v in waits.items()})
    assert all(seconds < 1.5 for seconds in waits.values()), waits


async def test_every_worker_of_serve_workers_2_tells_its_streams_and_stops_at_once(
        sqlite_factory: DatabaseFactory, tmp_path: Path) -> None:
    """``--workers 2`` on SQLite: whichever worker holds a stream, a change committed by the
    other worker or by another process reaches it; SIGTERM ends 20 streams at once."""
    db_url = sqlite_factory.new()
    school = sqlite_factory.demo["schools"][0]
    env = {"POS_WORKERS": "2"}
    baseline = await _stop_without_streams(db_url, tmp_path, env)
    with serve(db_url, tmp_path, env=env) as served:
        async with aiohttp.ClientSession() as http:
            device = await _enrolled(http, served.url, db_url, school["school_id"], "Counter 1")
            token = device["device_token"]
            # New connections each: the kernel hands them to both workers.
            streams = [await _stream_at(http, served.url, token) for _ in range(20)]
            for stream in streams:
                await stream.event()
            pushed = await http.post(f"{served.url}/api/v1/sync/sales", headers=auth(token),
                                     json={"sales": [sale(school, 1)]})
            assert pushed.status == 200, await pushed.text()
            after_push = await school_version(db_url, school["school_id"])
            for stream in streams:
                assert (await stream.event(within=2.0)).data == {"version": after_push}
            engine = create_engine(db_url)
            try:
                async with engine.begin() as conn:
                    await update_settings(conn, school["school_id"], offline_max_sale=999)
            finally:
                await engine.dispose()
            after_settings = await school_version(db_url, school["school_id"])
            for stream in streams:
                assert (await stream.event(within=2.0)).data == {"version": after_settings}
            metrics = await http.get(f"{served.url}/metrics")
            text = await metrics.text()
            assert "pos_sse_streams_open 20.0" in text, [
                line for line in text.splitlines() if "sse" in line]
            took = await _stop_with_streams(served, streams)
    _check_stop("--workers 2", served, {"no streams": baseline, **took})


async def test_sigterm_with_open_streams_exits_at_once(db_factory: DatabaseFactory,
                                                       tmp_path: Path) -> None:
    db_url = await asyncio.to_thread(db_factory.new)  # PostgreSQL: its own event loop
    school = db_factory.demo["schools"][0]
    baseline = await _stop_without_streams(db_url, tmp_path, {})
    with serve(db_url, tmp_path) as served:
        async with aiohttp.ClientSession() as http:
            device = await _enrolled(http, served.url, db_url, school["school_id"], "Counter 1")
            streams = [await _stream_at(http, served.url, device["device_token"])
                       for _ in range(20)]
            for stream in streams:
                await stream.event()
            took = await _stop_with_streams(served, streams)
    _check_stop("one process", served, {"no streams": baseline, **took})


async def _stop_without_streams(db_url: str, tmp_path: Path, env: dict[str, str]) -> float:
    """Seconds from SIGTERM to exit of a server with no stream open: the baseline."""
    with serve(db_url, tmp_path, env=env) as idle:
        started = time.monotonic()
        idle.process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(idle.process.wait, 30)
        return time.monotonic() - started


async def _stop_with_streams(served: Any, streams: list[EventReader]) -> dict[str, float]:
    started = time.monotonic()
    served.process.send_signal(signal.SIGTERM)
    for stream in streams:
        await stream.ended(within=10)
    took = {f"{len(streams)} streams: all ended": time.monotonic() - started}
    await asyncio.to_thread(served.process.wait, 30)
    took["process exited"] = time.monotonic() - started
    return took


def _check_stop(what: str, served: Any, took: dict[str, float]) -> None:
    print(f"SIGTERM, {what} (s):", {k: round(v, 2) for k, v in took.items()})
    assert served.process.returncode == 0, served.log_text()[-2000:]
    # Without ending the streams, each worker would wait them out for its shutdown timeout
    # (28.5 s with workers, 60 s without). Gunicorn's own stop takes seconds on a busy
    # machine, hence the baseline.
    assert took["20 streams: all ended"] < 2, took
    assert took["process exited"] < max(5.0, took["no streams"] + 3.0), took
    assert "Traceback" not in served.log_text(), served.log_text()[-3000:]


async def test_the_connection_cap_never_closes_a_stream_as_idle(
        sqlite_factory: DatabaseFactory, tmp_path: Path) -> None:
    """An open stream is a connection busy with a request (connections.GuardedServer): at the
    cap a new connection is refused rather than a stream closed."""
    db_url = sqlite_factory.new()
    school = sqlite_factory.demo["schools"][0]
    with serve(db_url, tmp_path, env={"POS_MAX_CONNECTIONS": "6"}) as served:
        async with aiohttp.ClientSession() as http:
            device = await _enrolled(http, served.url, db_url, school["school_id"], "Counter 1")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            streams = [await _stream_at(http, served.url, device["device_token"])
                       for _ in range(6)]
            for stream in streams:
                await stream.event()
            async with aiohttp.ClientSession() as other:  # a seventh connection
                refused = await other.get(f"{served.url}/api/v1/health")
                assert refused.status == 503 and refused.headers["Retry-After"] == "5"
            engine = create_engine(db_url)
            try:
                async with engine.begin() as conn:
                    await update_settings(conn, school["school_id"], offline_max_sale=555)
            finally:
                await engine.dispose()
            after = await school_version(db_url, school["school_id"])
            for stream in streams:  # every stream still open and told
                assert (await stream.event()).data == {"version": after}
            streams[0].response.close()
            await asyncio.sleep(0)
        async with aiohttp.ClientSession() as other:
            deadline = time.monotonic() + 5
            while (await other.get(f"{served.url}/api/v1/health")).status != 200:
                assert time.monotonic() < deadline, "no room after a stream closed"
                await asyncio.sleep(0.1)
