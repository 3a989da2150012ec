"""Snapshot intake on the terminal: a full snapshot of 10,000 wallets + bracelets into an
empty terminal (target < 1 s), a delta of 10 changes (target < 50 ms), and the terminal's RSS
with 10,000 wallets loaded (target < 150 MB).

Measured from the response bodies (JSON bytes, paged by 5,000 rows as the server pages them)
to committed rows: pydantic parsing, upserts, and the end-of-pull bookkeeping. HTTP transfer
is not included (see terminal_catchup.py for a full sync against the real server).

    .venv/bin/python benchmarks/terminal_snapshot.py [--wallets 10000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from terminal_common import enroll_offline, load_pages, snapshot_pages, uid_of

from terminal.core import Terminal
from terminal.store import snapshot


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wallets", type=int, default=10_000)
    args = parser.parse_args()
    full_pages = snapshot_pages(args.wallets)
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        fulls = []
        for run in range(3):
            term = Terminal(Path(tmp) / f"term{run}")
            enroll_offline(term)
            t0 = time.perf_counter()
            load_pages(term, full_pages)
            fulls.append(time.perf_counter() - t0)
            if run < 2:
                term.close()
        assert snapshot.counts(term.db)["wallets"] == args.wallets
        deltas = []
        for k in range(20):
            delta = snapshot_pages(10, start=k * 10, full=False)
            t0 = time.perf_counter()
            load_pages(term, delta)
            deltas.append(time.perf_counter() - t0)
        for i in range(200):  # a morning's worth of sales, then measure the process
            term.record_sale("cash1", [("p1", 1)], uid=uid_of(i * 37 % args.wallets))
        rss = psutil.Process().memory_info().rss / 2**20
        term.close()
    print(f"terminal_snapshot: {args.wallets} wallets + {args.wallets} bracelets")
    print(f"  full snapshot into an empty terminal: median {statistics.median(fulls):.3f} s "
          f"(runs: {', '.join(f'{t:.3f}' for t in fulls)})  target < 1 s")
    print(f"  delta of 10 changes: median {statistics.median(deltas) * 1000:.1f} ms, "
          f"max {max(deltas) * 1000:.1f} ms  target < 50 ms")
    print(f"  terminal RSS with {args.wallets} wallets loaded: {rss:.0f} MB  target < 150 MB")


if __name__ == "__main__":
    main()
