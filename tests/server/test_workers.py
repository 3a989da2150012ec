"""``pos-server serve --workers N``: several processes on one port and one database.

The arbiter (gunicorn) and the SQLite writer lock are real; the pushes come over HTTP from
concurrent clients, so two workers really do apply batches of one school at the same time.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from shared.health import wait_until_healthy
from sync_server.ledger.audit import audit
from sync_server.storage.engine import create_engine
from tests.conftest import free_port

from .helpers import sale

PY = sys.executable


def _workers(master: subprocess.Popen[bytes]) -> set[int]:
    return {child.pid for child in psutil.Process(master.pid).children()}


def _wait_for(predicate: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


async def _push_concurrently(base: str, school: dict[str, Any], tokens: list[str],
                             rounds: int) -> list[str]:
    statuses: list[str] = []
    async with httpx.AsyncClient(timeout=60) as client:
        async def device(i: int, token: str) -> None:
            for r in range(rounds):
                batch = [sale(school, r * 20 + k + 1, wallet=(i * 7 + k) % 40 + 1)
                         for k in range(20)]
                resp = await client.post(f"{base}/api/v1/sync/sales", json={"sales": batch},
                                         headers={"Authorization": f"Bearer {token}"})
                assert resp.status_code == 200, resp.text
                statuses.extend(res["status"] for res in resp.json()["results"])
        await asyncio.gather(*(device(i, t) for i, t in enumerate(tokens)))
    return statuses


def test_two_workers_share_port_and_database_survive_a_crash_and_stop_cleanly(
        db_url: str, demo: dict[str, Any], tmp_path: Path) -> None:
    port, school = free_port(), demo["schools"][0]
    log = (tmp_path / "server.log").open("w+")
    master = subprocess.Popen([PY, "-m", "sync_server", "serve", "--db", db_url, "--port",
                               str(port), "--workers", "2"], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, process=master)
        _wait_for(lambda: len(_workers(master)) == 2)
        codes = [school["enrollment_code"]]
        codes += [json.loads(subprocess.run(
            [PY, "-m", "sync_server", "enrollment-code", "--db", db_url, "--school",
             school["school_id"], "--json"], capture_output=True, text=True, check=True,
        ).stdout)["enrollment_code"] for _ in range(3)]
        tokens = [httpx.post(f"{base}/api/v1/devices/enroll",
                             json={"enrollment_code": c, "name": f"T{i}"}).json()["device_token"]
                  for i, c in enumerate(codes)]
        statuses = asyncio.run(_push_concurrently(base, school, tokens, rounds=3))
        assert statuses.count("applied") == 4 * 3 * 20
        # Each worker counted its own pushes; any worker's scrape sums them all (metrics.py).
        for _ in range(4):
            families = text_string_to_metric_families(httpx.get(f"{base}/metrics").text)
            applied = {s.labels.get("status"): s.value for f in families for s in f.samples
                       if s.name == "pos_sales_total"}
            assert applied["applied"] == 4 * 3 * 20

        # A worker killed outright is replaced; the service keeps answering.
        before = _workers(master)
        os.kill(min(before), signal.SIGKILL)
        _wait_for(lambda: len(_workers(master)) == 2 and _workers(master) != before)
        assert httpx.get(f"{base}/api/v1/health").status_code == 200

        master.send_signal(signal.SIGTERM)
        assert master.wait(timeout=40) == 0
    finally:
        if master.poll() is None:
            master.kill()
    log.seek(0)
    text = log.read()
    assert text.count('"POST /api/v1/sync/sales HTTP/1.1" 200') == 12
    assert not any(token in text for token in tokens)

    async def ledger() -> dict[str, Any]:
        engine = create_engine(db_url)
        try:
            return await audit(engine)
        finally:
            await engine.dispose()
    assert asyncio.run(ledger())["ok"]


def test_workers_must_be_positive(db_url: str) -> None:
    out = subprocess.run([PY, "-m", "sync_server", "serve", "--db", db_url, "--workers", "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert out.stderr.strip() == "pos-server: workers must be at least 1"
