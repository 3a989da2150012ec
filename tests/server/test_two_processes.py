"""Two server processes on one database, racing on the same refs and wallets.

The spec's promise: a ref is unique per school, so whichever process wins, the sale is posted
once and the loser answers ``duplicate`` with the winner's outcome. Batches from different
devices hitting overlapping wallets in opposite orders must not deadlock (wallets are locked
in sorted order). On SQLite the processes queue for the one writer through the writer lock,
and a push judged on refs read before the lock is retried when the other process wrote them.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import httpx

from tests.conftest import DatabaseFactory

from .helpers import sale


def _code(db_url: str, school_id: str) -> str:
    out = subprocess.run([sys.executable, "-m", "sync_server", "enrollment-code", "--db", db_url,
                          "--school", school_id, "--json"], capture_output=True, text=True,
                         check=True)
    return str(json.loads(out.stdout)["enrollment_code"])


async def _race(urls: list[str], tokens: list[str], batches: list[tuple[int, list[Any]]],
                ) -> list[list[dict[str, Any]]]:
    async with httpx.AsyncClient(timeout=60) as client:
        async def send(url: str, device: int, batch: list[Any]) -> dict[str, Any]:
            resp = await client.post(f"{url}/api/v1/sync/sales", json={"sales": batch},
                                     headers={"Authorization": f"Bearer {tokens[device]}"})
            assert resp.status_code == 200, resp.text
            return dict(resp.json())

        outcomes = []
        for device, batch in batches:  # each batch to both processes at the same moment
            pair = await asyncio.gather(*(send(url, device, batch) for url in urls))
            outcomes.append([r for resp in pair for r in resp["results"]])
        # Different devices, overlapping wallets, opposite orders, all at once.
        crossing = await asyncio.gather(*(
            send(urls[i % 2], i, batch) for i, (_, batch) in enumerate(
                [(0, list(reversed(batches[0][1]))), (1, batches[1][1])])))
        outcomes.append([r for resp in crossing for r in resp["results"]])
        return outcomes


def test_two_processes_post_each_ref_once(two_servers: tuple[str, list[str]],
                                          db_factory: DatabaseFactory) -> None:
    db_url, urls = two_servers
    school = db_factory.demo["schools"][0]
    tokens = []
    for i in range(2):
        resp = httpx.post(f"{urls[i]}/api/v1/devices/enroll",
                          json={"enrollment_code": _code(db_url, school["school_id"]),
                                "name": f"T{i}"})
        tokens.append(resp.json()["device_token"])
    batches: list[tuple[int, list[Any]]] = []
    seqs = [0, 0]
    for round_ in range(6):
        device = round_ % 2
        batch = []
        for k in range(150):
            seqs[device] += 1
            batch.append(sale(school, seqs[device], wallet=(k * 7 + round_) % 50,
                              items=(k % 10,)))
        batches.append((device, batch))
    # The crossing round re-sends rounds 0 and 1 (already applied): all duplicates.
    outcomes = asyncio.run(_race(urls, tokens, batches))

    for (_, batch), results in zip(batches, outcomes, strict=False):
        n = len(batch)
        for i in range(n):
            pair = sorted([results[i]["status"], results[n + i]["status"]])
            assert pair in (["applied", "duplicate"], ["duplicate", "rejected"]), pair
            a, b = results[i], results[n + i]
            assert a["balance_after"] == b["balance_after"]  # the loser repeats the outcome
    assert all(r["status"] == "duplicate" for r in outcomes[-1])

    audit = subprocess.run([sys.executable, "-m", "sync_server", "audit-ledger", "--db", db_url,
                            "--json"], capture_output=True, text=True)
    report = json.loads(audit.stdout)
    assert audit.returncode == 0 and report["ok"], report
    mine = next(s for s in report["schools"] if s["school_id"] == school["school_id"])
    assert mine["refs_posted_twice"] == [] and mine["missing_seqs"] == {}
