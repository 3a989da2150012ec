"""Tap-to-recorded latency of the terminal core: UID in, durable sale out (rules included),
with 10,000 wallets in the snapshot, beside the bare SQLite commit time measured in the same
run. Target: p99 < 10 ms.

    .venv/bin/python benchmarks/terminal_tap.py [--sales 2000] [--wallets 10000]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from terminal_common import (
    bare_commit_times,
    enroll_offline,
    load_pages,
    percentile,
    snapshot_pages,
    uid_of,
)

from terminal.core import Terminal


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sales", type=int, default=2000)
    parser.add_argument("--wallets", type=int, default=10_000)
    args = parser.parse_args()
    rng = random.Random(42)
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        term = Terminal(Path(tmp) / "term")
        enroll_offline(term)
        load_pages(term, snapshot_pages(args.wallets))
        times = []
        for _ in range(args.sales):
            uid = uid_of(rng.randrange(args.wallets))
            items = [(f"p{rng.randrange(10)}", rng.randint(1, 2))]
            t0 = time.perf_counter()
            term.record_sale("cash1", items, uid=uid)
            times.append(time.perf_counter() - t0)
        bare = bare_commit_times(Path(tmp), args.sales)
        term.close()

    def ms(values: list[float], q: float) -> str:
        return f"{percentile(values, q) * 1000:.2f} ms"

    print(f"terminal_tap: {args.sales} sales, {args.wallets} wallets in the snapshot")
    print(f"  tap-to-recorded  p50 {ms(times, 50)}  p99 {ms(times, 99)}  "
          f"max {max(times) * 1000:.2f} ms")
    print(f"  bare commit      p50 {ms(bare, 50)}  p99 {ms(bare, 99)}  "
          f"(WAL + synchronous=FULL, one small row per commit)")
    verdict = "OK" if percentile(times, 99) < 0.010 else "OVER TARGET"
    print(f"  target p99 < 10 ms: {verdict}")


if __name__ == "__main__":
    main()
