"""Gateway events applied per second through the real signed webhook, beside a plain-driver
baseline, with every event's outcome checked afterwards.

Setup per database: the two demo schools (`seed-demo`). Load: REFERENCES payments, each as
`payment.pending` → `payment.completed`, a fifth of them then partly refunded, and a tenth of
all deliveries re-sent verbatim (a gateway retrying) — sent by CLIENTS concurrent clients to
`pos-server serve --workers N` as its own process(es). Events of one reference go in order;
references interleave. Afterwards: `audit-ledger` is clean and every reference was credited
exactly once.

Baseline, same run, same database: the rows a completed or refunded event writes (its event
row, one posting, the balance update; the event row alone for a pending one) with the plain
driver, one transaction per event, one connection: what the database itself costs.

Run: .venv/bin/python benchmarks/payments.py [--references 600] [--db sqlite,postgresql]
     [--workers 2]
Target (2-core machine, one worker per core): >= 100 events/s and p99 <= 500 ms on both
databases, with 20 clients. Sizing: a district of 100 schools x 1,500 students where a fifth
of the parents top up in the first hour of the month is about 8 events/s; 100/s is ten times
that.
Exit 1 if missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import database, pg_available, server
from shared.ids import new_id

SECRET = "bench-webhook-secret"
CLIENTS = 20
TARGET_RATE, TARGET_P99_MS = 100, 500


def seed(db_url: str) -> dict[str, Any]:
    from sync_server.demo import seed as seed_demo
    from sync_server.storage.engine import create_engine
    from sync_server.storage.migrate import upgrade

    async def run() -> dict[str, Any]:
        await upgrade(db_url)
        engine = create_engine(db_url)
        try:
            return await seed_demo(engine, rng=random.Random(7))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def plan(demo: dict[str, Any], references: int, rng: random.Random) -> list[list[dict[str, Any]]]:
    """Per reference, its events in order (retries included)."""
    wallets = [(w["wallet_id"], s["currency"]) for s in demo["schools"] for w in s["wallets"]]
    flows = []
    for n in range(references):
        wallet, currency = rng.choice(wallets)
        amount = rng.randrange(10, 200) * 100
        ref = f"bench-{n}-{new_id('p')}"
        events = [("payment.pending", amount), ("payment.completed", amount)]
        if n % 5 == 0:
            events.append(("refund.completed", amount // 2))
        flow = []
        for i, (kind, value) in enumerate(events):
            body = {"event_id": f"evt-{ref}-{i}", "event_type": kind, "reference": ref,
                    "wallet_id": wallet, "amount": value, "currency": currency,
                    "created_at": datetime.now(UTC).isoformat()}
            flow.append(body)
            if rng.random() < 0.1:
                flow.append(body)  # the gateway retries a delivery
        flows.append(flow)
    return flows


async def endpoint_run(url: str, flows: list[list[dict[str, Any]]]) -> dict[str, Any]:
    from sync_server.api.webhooks import sign

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for flow in flows:
        queue.put_nowait(flow)

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            while not queue.empty():
                for body in queue.get_nowait():
                    raw = json.dumps(body).encode()
                    stamp = str(int(time.time()))
                    t0 = time.perf_counter()
                    resp = await http.post("/api/v1/webhooks/payments", content=raw, headers={
                        "Content-Type": "application/json", "X-Timestamp": stamp,
                        "X-Signature": sign(SECRET, stamp, raw)})
                    latencies.append((time.perf_counter() - t0) * 1000)
                    statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {"events": len(latencies), "rate": len(latencies) / elapsed,
            "p50": statistics.median(latencies),
            "p99": latencies[int(len(latencies) * 0.99) - 1], "statuses": statuses}


def baseline_run(db_url: str, flows: list[list[dict[str, Any]]]) -> float:
    """The same events' rows through the plain driver, one transaction per event."""
    events = [e for flow in flows for e in flow]
    now = datetime.now(UTC)
    rows = []
    for e in events:
        moves = e["event_type"] != "payment.pending"
        rows.append((e, new_id("pst") if moves else None))
    event_sql = ("INSERT INTO payment_events (event_id, school_id, event_type, wallet_id, amount, "
                 "currency, reference, created_at, received_at, status, flags, content_hash, "
                 "payload, source) VALUES ({})")
    posting_sql = ("INSERT INTO postings (posting_id, school_id, kind, from_account, to_account, "
                   "amount, occurred_at, posted_at) VALUES ({})")
    if db_url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        school = {w: s for w, s in conn.execute("SELECT wallet_id, school_id FROM wallets")}
        naive = now.replace(tzinfo=None)
        start = time.perf_counter()
        for n, (e, pid) in enumerate(rows):
            sid = school[e["wallet_id"]]
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(event_sql.format(", ".join("?" * 14)), (
                f"base-{n}", sid, e["event_type"], e["wallet_id"], e["amount"], e["currency"],
                e["reference"], naive, naive, "recorded", "[]", "h" * 64, "{}", "webhook"))
            if pid:
                conn.execute(posting_sql.format(", ".join("?" * 8)), (
                    pid, sid, "topup", f"{sid}:topup_clearing", e["wallet_id"], e["amount"],
                    naive, naive))
                conn.execute("UPDATE wallets SET balance = balance + ? WHERE wallet_id = ?",
                             (e["amount"], e["wallet_id"]))
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - start
        conn.close()
        return len(rows) / elapsed

    async def pg() -> float:
        import asyncpg

        conn = await asyncpg.connect(db_url)
        school = {r[0]: r[1] for r in await conn.fetch("SELECT wallet_id, school_id FROM wallets")}
        start = time.perf_counter()
        for n, (e, pid) in enumerate(rows):
            sid = school[e["wallet_id"]]
            async with conn.transaction():
                await conn.execute(event_sql.format(", ".join(f"${i}" for i in range(1, 15))),
                                   f"base-{n}", sid, e["event_type"], e["wallet_id"],
                                   e["amount"], e["currency"], e["reference"], now, now,
                                   "recorded", "[]", "h" * 64, "{}", "webhook")
                if pid:
                    await conn.execute(posting_sql.format(", ".join(f"${i}" for i in range(1, 9))),
                                       pid, sid, "topup", f"{sid}:topup_clearing",
                                       e["wallet_id"], e["amount"], now, now)
                    await conn.execute("UPDATE wallets SET balance = balance + $1 "
                                       "WHERE wallet_id = $2", e["amount"], e["wallet_id"])
        elapsed = time.perf_counter() - start
        await conn.close()
        return len(rows) / elapsed

    return asyncio.run(pg())


def check(db_url: str, references: int) -> tuple[bool, bool]:
    """(audit clean, every reference credited exactly once)."""
    import subprocess

    out = subprocess.run([sys.executable, "-m", "sync_server", "audit-ledger", "--db", db_url,
                          "--json"], capture_output=True, text=True)
    audit = out.returncode == 0 and json.loads(out.stdout)["ok"]

    async def credited() -> bool:
        import sqlalchemy as sa

        from sync_server.storage.engine import create_engine
        from sync_server.storage.schema import payments

        engine = create_engine(db_url)
        try:
            async with engine.connect() as conn:
                rows = (await conn.execute(sa.select(payments.c.credited, payments.c.amount)
                                           .where(payments.c.reference.like("bench-%")))).all()
        finally:
            await engine.dispose()
        return len(rows) == references and all(int(c) == int(a) for c, a in rows)

    return audit, asyncio.run(credited())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--references", type=int, default=600)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    os.environ["POS_WEBHOOK_SECRET"] = SECRET
    rng = random.Random(11)
    results = []
    for kind in args.db.split(","):
        if kind == "postgresql" and not pg_available():
            print("postgresql: skipped (no server at POS_TEST_PG_URL)")
            continue
        with database(kind) as db_url:
            demo = seed(db_url)
            flows = plan(demo, args.references, rng)
            with server(db_url, workers=args.workers) as url:
                r = asyncio.run(endpoint_run(url, flows))
            audit, once = check(db_url, args.references)
            baseline = baseline_run(db_url, flows)
        results.append((kind, r, baseline, audit, once))
    print(f"\n{'database':<11} {'events/s':>9} {'baseline/s':>10} {'ratio':>6} {'p50 ms':>7} "
          f"{'p99 ms':>7}  audit  credited once  statuses")
    failed = False
    for kind, r, baseline, audit, once in results:
        met = (r["rate"] >= TARGET_RATE and r["p99"] <= TARGET_P99_MS and audit and once
               and set(r["statuses"]) == {200})
        failed |= not met
        print(f"{kind:<11} {r['rate']:>9,.0f} {baseline:>10,.0f} {r['rate'] / baseline:>6.2f} "
              f"{r['p50']:>7.1f} {r['p99']:>7.1f}  {'ok' if audit else 'FAILED':<5}  "
              f"{'yes' if once else 'NO':<13}  {r['statuses']}  "
              f"{'target met' if met else 'TARGET MISSED'}")
    print(f"({args.references} references, {CLIENTS} concurrent clients, `serve --workers "
          f"{args.workers}`; targets >= {TARGET_RATE} events/s, p99 <= {TARGET_P99_MS} ms; "
          "baseline: plain driver, same rows, one transaction per event)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
