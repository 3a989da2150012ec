"""Shared set-up for the terminal benchmarks: a snapshot of N wallets and bracelets, built
as the server would send it, and loaded through the terminal's own snapshot code."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BIG_SETTINGS = {"currency": "SAR", "offline_max_sale": 5000,
                "offline_max_unsynced_total": 10**9, "offline_max_hours": 72,
                "overdraft_limit": 0, "timezone": "Asia/Riyadh"}


def uid_of(i: int) -> str:
    return f"04{i:012X}"


def snapshot_pages(n: int, page_rows: int = 5000, *, settings: dict[str, Any] | None = None,
                   start: int = 0, full: bool = True) -> list[bytes]:
    """JSON bodies of a (paged) snapshot, like GET /api/v1/sync/snapshot returns."""
    now = datetime.now(UTC).isoformat()
    pages = []
    for first in range(start, start + n, page_rows):
        last = min(first + page_rows, start + n)
        pages.append(json.dumps({
            "cursor": f"c{last}", "full": full, "more": last < start + n, "server_time": now,
            "settings": settings or BIG_SETTINGS,
            "wallets": [{"wallet_id": f"wal_{i:06d}", "display_name": f"Student {i}",
                         "balance": 1_000_000, "daily_limit": None if i % 3 else 100_000,
                         "status": "active", "balance_as_of": now}
                        for i in range(first, last)],
            "credentials": [{"uid": uid_of(i), "wallet_id": f"wal_{i:06d}",
                             "status": "active"} for i in range(first, last)],
            "products": [{"product_id": f"p{k}", "name": f"Item {k}", "price": 150 + 50 * k,
                          "category": "Food", "active": True} for k in range(10)],
            "cashiers": [{"cashier_id": "cash1", "name": "Amal", "pin_hash": "x",
                          "active": True}],
        }).encode())
    return pages


def load_pages(term: Any, pages: list[bytes]) -> None:
    """Parse and store pages exactly as a pull does (pydantic model, apply_page, finish)."""
    from shared.protocol import SnapshotResponse
    from terminal.store import snapshot, state

    db = term.db
    epoch = state.next_epoch(db)
    full = False
    for body in pages:
        page = SnapshotResponse.model_validate_json(body)
        snapshot.apply_page(db, page, epoch)
        full = full or page.full
    snapshot.finish_pull(db, epoch=epoch, cursor=page.cursor, full=full,
                         at=datetime.now(UTC), server_time=page.server_time)
    state.record_contact(db, datetime.now(UTC), ok=True)
    state.record_synced(db, datetime.now(UTC))


def enroll_offline(term: Any) -> None:
    from terminal.store import state

    state.save_device(term.db, state.Device(
        device_id="dev_bench", device_token="t", school_id="sch", currency="SAR",
        server_url="http://127.0.0.1:9", name="bench", enrolled_at=datetime.now(UTC).isoformat()))


def bare_commit_times(directory: Path, count: int) -> list[float]:
    """One small row per commit, WAL + synchronous=FULL: the floor any durable sale pays."""
    conn = sqlite3.connect(directory / "bare.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, ref TEXT, total INTEGER)")
    times = []
    for i in range(count):
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (ref, total) VALUES (?, ?)", (os.urandom(8).hex(), i))
        conn.execute("COMMIT")
        times.append(time.perf_counter() - t0)
    conn.close()
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]
