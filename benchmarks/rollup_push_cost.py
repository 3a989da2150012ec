"""What the report rollups (migration 0011) cost a sales push: an in-process A/B.

One process, one database per kind: the push benchmark's school (2,000 wallets, 10 products),
one till, batches of 1,000 fresh sales applied with ``apply_push`` (the whole push path below
HTTP), alternately with the rollup writes on (as shipped) and off (``rollup_writes``' two push
functions replaced by no-ops), so load that comes and goes on a shared machine falls on both
sides alike. Prints the median and p90 ms per batch of each side and the change in %, and the
time spent inside the rollup writes themselves (measured around them: less noisy).

Run: .venv/bin/python benchmarks/rollup_push_cost.py [--pairs 15] [--db sqlite,postgresql]
No target: the rollups must stay a small part of a push (the issue's wording: "keep it cheap:
it runs on every push").
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import database, pg_available
from benchmarks.server_push import WALLETS, prepare
from shared.ids import new_id, new_ref

BATCH = 1000


async def run(db_url: str, pairs: int) -> dict[str, list[float]]:
    import sqlalchemy as sa

    from shared.protocol import Sale
    from sync_server.ledger.sales import apply_push
    from sync_server.reports import rollup_writes
    from sync_server.secrets import new_device_token, token_hash
    from sync_server.storage.engine import create_engine
    from sync_server.storage.schema import devices

    setup = await prepare(db_url)
    engine = create_engine(db_url)
    device_id = new_id("dev")
    async with engine.begin() as conn:
        await conn.execute(sa.insert(devices).values(
            device_id=device_id, school_id=setup["school_id"], name="A/B till",
            token_hash=token_hash(new_device_token()), status="active",
            enrolled_at=datetime.now(UTC)))
    seq = 0

    def batch() -> list[Any]:
        nonlocal seq
        out = []
        for k in range(BATCH):
            seq += 1
            product, price = setup["products"][k % 10]
            qty = 1 + k % 3
            out.append(Sale.model_validate({
                "ref": new_ref(), "seq": seq, "kind": "sale", "voids": None,
                "created_at": datetime.now(UTC) - timedelta(minutes=1),
                "cashier_id": setup["cashier"],
                "wallet_id": setup["wallets"][(seq * 31 + k) % WALLETS], "credential_uid": None,
                "lines": [{"product_id": product, "name": f"P{k % 10}", "quantity": qty,
                           "unit_price": price}],
                "total": qty * price, "offline": True}))
        return out

    async def off_items(*_: Any) -> None:
        return None

    shipped = (rollup_writes.sales_recorded, rollup_writes.postings_written)
    inside = [0.0]

    def timed(fn: Any) -> Any:
        async def call(*a: Any) -> None:
            started = time.perf_counter()
            await fn(*a)
            inside[0] += (time.perf_counter() - started) * 1000
        return call

    on = (timed(shipped[0]), timed(shipped[1]))
    times: dict[str, list[float]] = {"on": [], "off": [], "inside": []}
    try:
        await apply_push(engine, setup["school_id"], device_id, batch())  # warm up
        for i in range(2 * pairs):
            side = "on" if i % 2 == 0 else "off"
            fns = on if side == "on" else (off_items, off_items)
            setattr(rollup_writes, "sales_recorded", fns[0])  # noqa: B010 (swapped on purpose)
            setattr(rollup_writes, "postings_written", fns[1])  # noqa: B010
            sales = batch()
            inside[0] = 0.0
            started = time.perf_counter()
            await apply_push(engine, setup["school_id"], device_id, sales)
            times[side].append((time.perf_counter() - started) * 1000)
            if side == "on":
                times["inside"].append(inside[0])
    finally:
        setattr(rollup_writes, "sales_recorded", shipped[0])  # noqa: B010
        setattr(rollup_writes, "postings_written", shipped[1])  # noqa: B010
        await engine.dispose()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=15)
    parser.add_argument("--db", default="sqlite,postgresql")
    args = parser.parse_args()
    with open("/proc/loadavg") as f:
        print(f"load average {f.read().split()[0]}; {args.pairs} pairs of {BATCH}-sale batches")
    for kind in args.db.split(","):
        if kind == "postgresql" and not pg_available():
            print("postgresql: not reachable, skipped")
            continue
        with database(kind) as db_url:
            t = asyncio.run(run(db_url, args.pairs))
        on, off = statistics.median(t["on"]), statistics.median(t["off"])

        def p90(xs: list[float]) -> float:
            return sorted(xs)[int(0.9 * (len(xs) - 1))]

        print(f"{kind:<11} rollups off: median {off:7.1f} ms, p90 {p90(t['off']):7.1f} ms | "
              f"on: median {on:7.1f} ms, p90 {p90(t['on']):7.1f} ms | "
              f"change {100 * (on - off) / off:+.1f} %; inside the rollup writes: median "
              f"{statistics.median(t['inside']):.1f} ms a batch "
              f"({100 * statistics.median(t['inside']) / on:.1f} % of it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
