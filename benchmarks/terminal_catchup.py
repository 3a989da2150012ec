"""Catch-up: 5,000 queued sales drained to a local server (``pos-server serve`` on loopback,
SQLite). Target: < 2 s for the whole sync (5 pushes of 1,000 plus the snapshot pull).

The queue is written straight into the outbox (same ``outbox.append`` a sale uses) because
5,000 sales exceed what the demo wallets and the school's offline caps would let the rules
accept; the server applies them anyway, flagging overdrafts, which is the slower path.

    .venv/bin/python benchmarks/terminal_catchup.py [--sales 5000]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BIN = Path(sys.executable).parent
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import server  # noqa: E402


def main() -> None:
    from shared.ids import new_ref
    from terminal.core import Terminal
    from terminal.store import outbox
    from terminal.store.outbox import NewEntry

    parser = argparse.ArgumentParser()
    parser.add_argument("--sales", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        db_url = f"sqlite:///{tmp}/server.db"
        subprocess.run([str(BIN / "pos-server"), "migrate", "--db", db_url], check=True,
                       capture_output=True)
        demo = json.loads(subprocess.run(
            [str(BIN / "pos-server"), "seed-demo", "--db", db_url, "--json"], check=True,
            capture_output=True, text=True).stdout)
        school = demo["schools"][0]
        with server(db_url) as url:
            term = Terminal(Path(tmp) / "term")
            term.enroll(url, school["enrollment_code"], "bench")
            rng = random.Random(1)
            wallets = [w for w in school["wallets"] if w.get("status", "active") == "active"]
            product = school["products"][0]
            cashier = school["cashiers"][0]["cashier_id"]
            now = datetime.now(UTC)
            with outbox.immediate_transaction(term.db) as conn:
                for _ in range(args.sales):
                    w = rng.choice(wallets)
                    line = {"product_id": product["product_id"], "name": product["name"],
                            "quantity": 1, "unit_price": product["price"]}
                    outbox.append(conn, NewEntry(
                        ref=new_ref(), kind="sale", voids=None,
                        created_at=now.isoformat(timespec="milliseconds"),
                        school_day=now.date().isoformat(), cashier_id=cashier,
                        wallet_id=w["wallet_id"], credential_uid=w["credential_uid"],
                        lines=[line], total=product["price"], offline=True))
            t0 = time.perf_counter()
            report = term.sync_once()
            elapsed = time.perf_counter() - t0
            assert report.completed, report.error
            assert report.queued == 0 and report.counts["applied"] == args.sales, report
            term.close()
    print(f"terminal_catchup: {args.sales} queued sales drained in {elapsed:.2f} s "
          f"({args.sales / elapsed:.0f} sales/s; pushes of 1,000 + snapshot pull)")
    print(f"  target < 2 s: {'OK' if elapsed < 2 else 'OVER TARGET'}")


if __name__ == "__main__":
    main()
