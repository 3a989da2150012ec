"""Slow clients cannot take a worker: slowloris, silent connections and slow bodies.

A real ``pos-server serve`` process with a hard open-files limit of 1,024 (a host without
``LimitNOFILE``; the server cannot raise it) and 1,100 slowloris connections, each sending a
request head a byte a second and connecting again half a second after the server closes it:
``/health`` and a real push still answer at once, the process never runs out of descriptors,
and its log holds a line or two about the cap, not a line per connection. Bodies that stall get 408.
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.conftest import DatabaseFactory

from .helpers import auth, sale
from .serve_process import serve

OPEN_FILES = 1024
SLOW_CLIENTS = 1100
HEAD = b"GET /api/v1/health HTTP/1.1\r\nHost: pos\r\nX-Padding: " + b"a" * 4000


async def _slowloris(port: int, stop: asyncio.Event, stats: dict[str, int]) -> None:
    """One attacker: trickle a request head; when closed, connect again."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        sock = socket.socket()
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, ("127.0.0.1", port))
            stats["connected"] += 1
            for byte in HEAD:
                await loop.sock_sendall(sock, bytes([byte]))
                try:
                    await asyncio.wait_for(stop.wait(), 1.0)
                    return
                except TimeoutError:
                    pass
            stats["finished"] += 1  # never: the head is longer than the test
        except OSError:
            stats["closed"] += 1  # reset or broken pipe: the server closed it
            await asyncio.sleep(0.5)
        finally:
            sock.close()


async def _count_files(pid: int, stop: asyncio.Event, stats: dict[str, int]) -> None:
    process = psutil.Process(pid)
    while not stop.is_set():
        stats["most_files"] = max(stats["most_files"], process.num_fds())
        await asyncio.sleep(0.1)


async def _attack_and_serve(url: str, pid: int, school: dict[str, Any],
                            seconds: float) -> dict[str, Any]:
    port = int(url.rsplit(":", 1)[1])
    stop = asyncio.Event()
    stats = {"connected": 0, "closed": 0, "finished": 0, "most_files": 0}
    attackers = [asyncio.create_task(_slowloris(port, stop, stats))
                 for _ in range(SLOW_CLIENTS)]
    attackers.append(asyncio.create_task(_count_files(pid, stop, stats)))
    health: list[tuple[int, float]] = []
    pushes: list[tuple[int, float]] = []
    try:
        await asyncio.sleep(2.0)  # every attacker connected and trickling
        async with httpx.AsyncClient(timeout=10) as client:
            enrolled = (await client.post(f"{url}/api/v1/devices/enroll", json={
                "enrollment_code": school["enrollment_code"], "name": "Counter 1"})).json()
            token = enrolled["device_token"]
        deadline = time.monotonic() + seconds
        seq = 0
        while time.monotonic() < deadline:
            async with httpx.AsyncClient(timeout=10) as fresh:  # a new connection each time
                began = time.monotonic()
                resp = await fresh.get(f"{url}/api/v1/health")
                health.append((resp.status_code, time.monotonic() - began))
                seq += 1
                began = time.monotonic()
                resp = await fresh.post(f"{url}/api/v1/sync/sales",
                                        json={"sales": [sale(school, seq)]}, headers=auth(token))
                pushes.append((resp.status_code, time.monotonic() - began))
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.gather(*attackers, return_exceptions=True)
    return {"stats": stats, "health": health, "pushes": pushes}


def test_1100_slowloris_connections_do_not_block_health_or_a_push(
        sqlite_factory: DatabaseFactory, tmp_path: Path) -> None:
    db_url = sqlite_factory.new()
    school = sqlite_factory.demo["schools"][0]
    with serve(db_url, tmp_path, open_files=OPEN_FILES,
               env={"POS_HEADER_TIMEOUT_SECONDS": "30"}) as server:
        seen = asyncio.run(_attack_and_serve(server.url, server.process.pid, school,
                                             seconds=5.0))
        alive = server.process.poll() is None
    text = server.log_text()
    worst_health = max(took for _, took in seen["health"])
    worst_push = max(took for _, took in seen["pushes"])
    print(f"\nslowloris {seen['stats']}; {len(seen['health'])} health checks, worst "
          f"{worst_health * 1000:.0f} ms; {len(seen['pushes'])} pushes, worst "
          f"{worst_push * 1000:.0f} ms")
    assert alive
    assert {status for status, _ in seen["health"]} == {200}
    assert {status for status, _ in seen["pushes"]} == {200}
    # Blocked would mean waiting out the 30 s header timeout the attackers hold; the bounds
    # leave room for a second pytest process on the same two cores (health took 1.8 s once
    # there). How fast it answers is benchmarks' business, not this test's.
    assert worst_health < 5.0 and worst_push < 10.0
    assert seen["stats"]["closed"] > 0  # the cap closed idle attackers to make room
    assert seen["stats"]["most_files"] < OPEN_FILES
    # Usually none; a burst of accepts can still touch the limit before the cap closes idle
    # connections (seen once on a loaded CI run): then one summary line, never a flood.
    emfile = [line for line in text.splitlines() if "Too many open files" in line]
    assert len(emfile) <= 1 and all("since the last line" in line for line in emfile), emfile
    assert "Traceback" not in text
    assert "open-files limit 1024: at most 680 connections per worker" in text
    cap_lines = [line for line in text.splitlines() if "the cap" in line]
    assert 1 <= len(cap_lines) <= 4, cap_lines


def test_a_silent_connection_is_closed_after_the_header_timeout_and_a_stalled_body_gets_408(
        sqlite_factory: DatabaseFactory, tmp_path: Path) -> None:
    env = {"POS_HEADER_TIMEOUT_SECONDS": "1.5", "POS_BODY_TIMEOUT_SECONDS": "1.5"}
    with serve(sqlite_factory.new(), tmp_path, env=env) as server:
        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as trickle:
            began = time.monotonic()
            closed_after = None
            for byte in b"GET /api/v1/health HTTP/1.1\r\nHost: pos\r\n":
                try:
                    trickle.sendall(bytes([byte]))
                except OSError:
                    closed_after = time.monotonic() - began
                    break
                time.sleep(0.1)
            if closed_after is None:
                assert trickle.recv(1) == b""  # closed without an answer
                closed_after = time.monotonic() - began
        assert 1.4 < closed_after < 4.5, closed_after

        with socket.create_connection(("127.0.0.1", port), timeout=10) as stalled:
            stalled.sendall(b"POST /api/v1/devices/enroll HTTP/1.1\r\nHost: pos\r\n"
                            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                            b'{"enrollment')
            began = time.monotonic()
            answer = stalled.recv(4096)
            waited = time.monotonic() - began
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"application/problem+json" in answer
        assert 1.4 < waited < 4.0, waited
    assert "Traceback" not in server.log_text()
