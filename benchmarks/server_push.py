"""Sales applied per second through the real HTTP endpoint, beside a plain-driver baseline.

Setup per database: a school with 2,000 wallets, 10 enrolled devices. Each device pushes
batches of 1,000 sales (900 new + 100 replays of its previous batch) concurrently with the
others, to ``pos-server serve --workers N`` running as its own process(es) behind one URL.
Baseline, same run, same database: the same rows (sales, seqs, postings, balance updates)
written with the plain driver (sqlite3 / asyncpg), one transaction per batch of 1,000.
Also: a batch of 1,000 fresh sales vs the same batch replayed (median of 3 each).

Run: .venv/bin/python benchmarks/server_push.py [--rounds 5] [--db sqlite,postgresql]
     [--workers 1,2]
Targets (issue 2, 2-core machine, one worker per core): >= 15,000 sales/s on SQLite,
>= 5,000 on PostgreSQL, and a replayed batch no slower than a fresh one. Exit 1 if missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import database, pg_available, server
from shared.ids import new_id, new_ref
from sync_server.ledger.accounts import REVENUE, system_account

DEVICES, BATCH, REPLAYS, WALLETS = 10, 1000, 100, 2000
TARGETS = {"sqlite": 15_000, "postgresql": 5_000}


async def prepare(db_url: str) -> dict[str, Any]:
    import sqlalchemy as sa

    from sync_server import records
    from sync_server.ledger.accounts import TOPUP_CLEARING, system_account
    from sync_server.reports import rollup_source
    from sync_server.storage.engine import create_engine
    from sync_server.storage.migrate import upgrade
    from sync_server.storage.schema import accounts, money_ops, postings, wallets

    await upgrade(db_url)
    engine = create_engine(db_url)
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        school_id = await records.create_school(conn, "Bench School")
        products = [(await records.create_product(conn, school_id, f"P{i}", 100 + 50 * i, "X"),
                     100 + 50 * i) for i in range(10)]
        cashier = await records.create_cashier(conn, school_id, "Bench", "1234")
        wallet_ids = [new_id("wal") for _ in range(WALLETS)]
        await conn.execute(sa.insert(accounts), [
            {"account_id": w, "school_id": school_id, "kind": "wallet", "created_at": now}
            for w in wallet_ids])
        await conn.execute(sa.insert(wallets), [
            {"wallet_id": w, "school_id": school_id, "display_name": f"S{i}",
             "balance": 10_000_000, "daily_limit": None, "status": "active", "version": 2,
             "created_at": now, "updated_at": now} for i, w in enumerate(wallet_ids)])
        # Opening balances written in bulk as the ledger writes them (a posting and the
        # money operation that owns it, so audit-ledger's ownership check holds), instead of
        # 2,000 separate ledger calls before every run.
        opening = [(w, new_id("pst")) for w in wallet_ids]
        await conn.execute(sa.insert(postings), [
            {"posting_id": pid, "school_id": school_id, "kind": "opening",
             "from_account": system_account(school_id, TOPUP_CLEARING), "to_account": w,
             "amount": 10_000_000, "occurred_at": now, "posted_at": now} for w, pid in opening])
        await conn.execute(sa.insert(money_ops), [
            {"op_id": new_id("op"), "school_id": school_id, "idem_key": f"bench-opening:{w}",
             "content_hash": "bench", "kind": "opening", "wallet_id": w, "amount": 10_000_000,
             "posting_id": pid, "balance_after": 10_000_000, "actor": "benchmark",
             "created_at": now} for w, pid in opening])
        await rollup_source.rebuild(conn, school_id)  # the day nets the ledger would keep
        codes = [await records.create_enrollment_code(conn, school_id, timedelta(hours=1))
                 for _ in range(DEVICES + 2)]
    await engine.dispose()
    return {"school_id": school_id, "products": products, "cashier": cashier,
            "wallets": wallet_ids, "codes": codes}


def make_sale(setup: dict[str, Any], seq: int, k: int) -> dict[str, Any]:
    product, price = setup["products"][k % 10]
    qty = 1 + k % 3
    return {"ref": new_ref(), "seq": seq, "kind": "sale", "voids": None,
            "created_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
            "cashier_id": setup["cashier"], "wallet_id": setup["wallets"][(seq * 31 + k) % WALLETS],
            "credential_uid": None,
            "lines": [{"product_id": product, "name": "x", "quantity": qty, "unit_price": price}],
            "total": qty * price, "offline": True}


class Device:
    def __init__(self, token: str, setup: dict[str, Any]) -> None:
        self.token, self.setup, self.seq = token, setup, 0
        self.previous: list[dict[str, Any]] = []

    def next_batch(self, replays: int) -> list[dict[str, Any]]:
        fresh = []
        for k in range(BATCH - replays):
            self.seq += 1
            fresh.append(make_sale(self.setup, self.seq, k))
        batch = fresh + self.previous[:replays]
        self.previous = fresh
        return batch


async def push(client: httpx.AsyncClient, url: str, token: str, body: bytes) -> dict[str, Any]:
    resp = await client.post(f"{url}/api/v1/sync/sales", content=body, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    resp.raise_for_status()
    return dict(resp.json())


async def endpoint_run(url: str, setup: dict[str, Any], rounds: int) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=120) as client:
        devices = []
        for code in setup["codes"][:DEVICES]:
            resp = await client.post(f"{url}/api/v1/devices/enroll",
                                     json={"enrollment_code": code, "name": "bench"})
            devices.append(Device(resp.json()["device_token"], setup))
        # Warm-up (untimed): gives every device a previous batch to replay from.
        await asyncio.gather(*(push(client, url, d.token, json.dumps(
            {"sales": d.next_batch(0)}).encode()) for d in devices))
        bodies = [[json.dumps({"sales": d.next_batch(REPLAYS)}).encode() for _ in range(rounds)]
                  for d in devices]

        async def run_device(i: int) -> list[str]:
            statuses = []
            for body in bodies[i]:
                result = await push(client, url, devices[i].token, body)
                statuses += [r["status"] for r in result["results"]]
                assert result["missing_seqs"] == []
            return statuses

        start = time.perf_counter()
        statuses = [s for group in await asyncio.gather(*(run_device(i)
                                                           for i in range(DEVICES)))
                    for s in group]
        elapsed = time.perf_counter() - start
        assert statuses.count("duplicate") == DEVICES * rounds * REPLAYS, "replays not detected"

        # Fresh batch vs the same batch replayed, one device alone.
        solo = Device((await client.post(f"{url}/api/v1/devices/enroll", json={
            "enrollment_code": setup["codes"][DEVICES], "name": "solo"})).json()["device_token"],
            setup)
        fresh_ms, replay_ms = [], []
        for _ in range(3):
            body = json.dumps({"sales": solo.next_batch(0)}).encode()
            t0 = time.perf_counter()
            await push(client, url, solo.token, body)
            fresh_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            again = await push(client, url, solo.token, body)
            replay_ms.append((time.perf_counter() - t0) * 1000)
            assert {r["status"] for r in again["results"]} == {"duplicate"}
    return {"sales": len(statuses), "seconds": elapsed, "rate": len(statuses) / elapsed,
            "fresh_ms": statistics.median(fresh_ms), "replay_ms": statistics.median(replay_ms)}


def _rows(setup: dict[str, Any], device_id: str, batch: list[dict[str, Any]], now: datetime,
          ) -> tuple[list[tuple[Any, ...]], ...]:
    sales, seqs, posts, deltas = [], [], [], {}
    revenue = system_account(setup["school_id"], REVENUE)
    for s in batch:
        pid = new_id("pst")
        sales.append((setup["school_id"], s["ref"], device_id, s["seq"], "sale", None, now, now,
                      s["cashier_id"], s["wallet_id"], None, json.dumps(s["lines"]), s["total"],
                      True, "applied", None, None, "[]", 0, "h" * 64, pid, "2026-11-22"))
        seqs.append((device_id, s["seq"], setup["school_id"], s["ref"]))
        posts.append((pid, setup["school_id"], "sale", s["wallet_id"], revenue, s["total"],
                      s["ref"], now, now))
        deltas[s["wallet_id"]] = deltas.get(s["wallet_id"], 0) - s["total"]
    return sales, seqs, posts, [(d, w) for w, d in sorted(deltas.items())]


POSTING_SQL = ("INSERT INTO postings (posting_id, school_id, kind, from_account, to_account, "
               "amount, sale_ref, occurred_at, posted_at) VALUES ({}, {}, {}, {}, {}, {}, {}, "
               "{}, {})")
SALES_COLS = ("school_id, ref, device_id, seq, kind, voids_ref, created_at, received_at, "
              "cashier_id, wallet_id, credential_uid, lines, total, offline, status, code, "
              "detail, flags, balance_after, content_hash, txn_id, business_day")


async def baseline_run(db_url: str, setup: dict[str, Any], batches: int) -> float:
    """The same rows with the plain driver: one transaction per batch of 1,000."""
    device_id = new_id("dev")
    now = datetime.now(UTC)
    fake = Device("", setup)
    fake.seq = 10_000_000
    work = [_rows(setup, device_id, fake.next_batch(0), now) for _ in range(batches)]
    ph = ", ".join(["?"] * 22)
    if db_url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("INSERT INTO devices (device_id, school_id, name, token_hash, status, "
                     "enrolled_at, acked_seq, max_seq) VALUES (?, ?, 'b', ?, 'active', ?, 0, 0)",
                     (device_id, setup["school_id"], device_id, now.replace(tzinfo=None)))
        naive = now.replace(tzinfo=None)
        start = time.perf_counter()
        for sales, seqs, posts, deltas in work:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(f"INSERT INTO sales ({SALES_COLS}) VALUES ({ph})",
                             [(*r[:6], naive, naive, *r[8:]) for r in sales])
            conn.executemany("INSERT INTO device_seqs VALUES (?, ?, ?, ?)", seqs)
            conn.executemany(POSTING_SQL.format(*"?" * 9),
                             [(*p[:7], naive, naive) for p in posts])
            conn.executemany("UPDATE wallets SET balance = balance + ? WHERE wallet_id = ?",
                             deltas)
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - start
        conn.close()
        return batches * BATCH / elapsed

    import asyncpg

    conn = await asyncpg.connect(db_url)
    await conn.execute("INSERT INTO devices (device_id, school_id, name, token_hash, status, "
                       "enrolled_at, acked_seq, max_seq) VALUES ($1, $2, 'b', $3, 'active', $4, "
                       "0, 0)", device_id, setup["school_id"], device_id, now)
    pg_ph = ", ".join(f"${i}" for i in range(1, 23))
    start = time.perf_counter()
    for sales, seqs, posts, deltas in work:
        async with conn.transaction():
            await conn.executemany(f"INSERT INTO sales ({SALES_COLS}) VALUES ({pg_ph})", sales)
            await conn.executemany("INSERT INTO device_seqs VALUES ($1, $2, $3, $4)", seqs)
            await conn.executemany(POSTING_SQL.format(*(f"${i}" for i in range(1, 10))),
                                   posts)
            await conn.executemany("UPDATE wallets SET balance = balance + $1 "
                                   "WHERE wallet_id = $2", deltas)
    elapsed = time.perf_counter() - start
    await conn.close()
    return batches * BATCH / elapsed


def audit_ok(db_url: str) -> bool:
    import subprocess

    out = subprocess.run([sys.executable, "-m", "sync_server", "audit-ledger", "--db", db_url,
                          "--json"], capture_output=True, text=True)
    return out.returncode == 0 and json.loads(out.stdout)["ok"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="batches per device (timed)")
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--workers", default="1,2",
                        help="`serve --workers` counts to measure (one per core is the "
                             "production layout)")
    args = parser.parse_args()
    rows = []
    for kind in args.db.split(","):
        if kind == "postgresql" and not pg_available():
            print("postgresql: skipped (no server at POS_TEST_PG_URL)")
            continue
        for n in (int(x) for x in args.workers.split(",")):
            with database(kind) as db_url:
                setup = asyncio.run(prepare(db_url))
                with server(db_url, workers=n) as url:
                    result = asyncio.run(endpoint_run(url, setup, args.rounds))
                ok = audit_ok(db_url)
                baseline = asyncio.run(baseline_run(db_url, setup, args.rounds * 2))
            rows.append((f"{kind} x{n}", kind, n, result, baseline, ok))
    # The targets are for the production layout, one worker per core; other rows are shown for
    # comparison. Replay speed and the audit count on every row.
    cores = os.cpu_count() or 1
    print(f"\n{'database':<13} {'endpoint sales/s':>16} {'baseline sales/s':>16} {'ratio':>6} "
          f"{'target':>7} {'fresh ms':>9} {'replay ms':>9}  audit")
    failed = False
    for label, kind, workers, r, baseline, ok in rows:
        fast = r["rate"] >= TARGETS[kind]
        met = r["replay_ms"] <= r["fresh_ms"] and ok and (fast or workers != cores)
        failed |= not met
        verdict = ("target met" if met else "TARGET MISSED") if workers == cores else (
            f"{'ok' if met else 'FAILED'} (uses {workers} of {cores} cores; no target)")
        print(f"{label:<13} {r['rate']:>16,.0f} {baseline:>16,.0f} {r['rate'] / baseline:>6.2f} "
              f"{TARGETS[kind]:>7,} {r['fresh_ms']:>9.1f} {r['replay_ms']:>9.1f}  "
              f"{'ok' if ok else 'FAILED'}  {verdict}")
    print(f"({DEVICES} devices x {args.rounds} batches x {BATCH} sales, {REPLAYS} replays per "
          f"batch, {WALLETS} wallets, `serve --workers N` as xN; baseline: plain driver, same "
          f"rows, one transaction/batch)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
