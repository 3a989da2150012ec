"""One sync cycle: push the whole queue in batches, then pull snapshot pages until done.

Only short write transactions touch the store (one per batch result, one per snapshot page),
so a sale being recorded at the same moment waits at most for one of them, never for the
network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlite_utils import Database

from shared.protocol import MAX_SALES_PER_PUSH
from terminal.changes import Change
from terminal.errors import (
    DeviceNotAuthorized,
    ServerRefusedRequest,
    ServerUnreachable,
    TerminalError,
)
from terminal.store import outbox, snapshot, state
from terminal.sync.client import SyncClient

MAX_PAGES = 100_000  # a server that says "more" forever must not hang the terminal

RESULT_KINDS = ("applied", "duplicate", "conflict", "rejected")


@dataclass(slots=True)
class SyncReport:
    reached: bool = False              # the server gave at least one usable answer
    completed: bool = False            # push and pull both finished
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESULT_KINDS, 0))
    acked_seq: int = 0
    queued: int = 0
    pushed: int = 0
    snapshot_pages: int = 0
    error: str | None = None
    unreachable: bool = False
    auth_problem: str | None = None
    retry_after: float | None = None
    # What this cycle changed in the store: always SYNC; SALES when a push result or an ack
    # moved an outbox row; SNAPSHOT when a page brought rows (a delta with nothing in it does
    # not); SETTINGS when the school's settings differ from the stored ones.
    changed: Change = Change.SYNC


def run_cycle(db: Database, client: SyncClient, clock: Callable[[], datetime],
              batch_size: int = MAX_SALES_PER_PUSH) -> SyncReport:
    report = SyncReport()
    try:
        _push_queue(db, client, clock, batch_size, report)
        _pull_snapshot(db, client, clock, report)
        state.record_synced(db, clock())
        report.completed = True
    except ServerUnreachable as exc:
        report.unreachable, report.error = True, str(exc)
        report.retry_after = client.retry_after
        state.record_contact(db, clock(), ok=False, error=str(exc))
    except DeviceNotAuthorized as exc:
        report.reached, report.error, report.auth_problem = True, str(exc), exc.problem
        state.record_contact(db, clock(), ok=False, error=str(exc),
                             auth_problem=exc.problem)
    except (ServerRefusedRequest, TerminalError) as exc:
        report.error = str(exc)
        state.record_contact(db, clock(), ok=True)
    finally:
        stats = outbox.queue_stats(db.conn)
        report.queued = stats.queued
        report.acked_seq = state.get_sync_state(db).acked_seq
    return report


def _push_queue(db: Database, client: SyncClient, clock: Callable[[], datetime],
                batch_size: int, report: SyncReport) -> None:
    """Send every unacknowledged row once, oldest first. When the queue is empty an empty push
    still asks for ``acked_seq`` (it tells us if the server lost anything)."""
    after_seq = 0
    while True:
        batch = outbox.unacked_batch(db.conn, after_seq, batch_size)
        if not batch and after_seq:
            return
        response = client.push([row.wire() for row in batch])
        report.reached = True
        # Read the epoch *after* the answer: a pull that started before this point gets a
        # snapshot that may predate these sales (see outbox.py).
        epoch = state.current_epoch(db)
        if outbox.store_results(db, batch, response, epoch, clock()):
            report.changed |= Change.SALES
        state.record_contact(db, clock(), ok=True)
        for result in response.results:
            report.counts[result.status] = report.counts.get(result.status, 0) + 1
        report.pushed += len(batch)
        if not batch or len(batch) < batch_size:
            return
        after_seq = batch[-1].seq


def _pull_snapshot(db: Database, client: SyncClient, clock: Callable[[], datetime],
                   report: SyncReport) -> None:
    epoch = state.next_epoch(db)
    cursor = state.get_sync_state(db).cursor
    full = False
    for _ in range(MAX_PAGES):
        page = client.snapshot(cursor)
        report.reached = True
        if snapshot.apply_page(db, page, epoch):
            report.changed |= Change.SETTINGS
        if page.full or page.wallets or page.credentials or page.products or page.cashiers:
            report.changed |= Change.SNAPSHOT
        report.snapshot_pages += 1
        full = full or page.full
        cursor = page.cursor
        if not page.more:
            snapshot.finish_pull(db, epoch=epoch, cursor=page.cursor, full=full, at=clock(),
                                 server_time=page.server_time)
            state.record_contact(db, clock(), ok=True)
            return
    raise ServerRefusedRequest("the snapshot never ended (server kept saying 'more')")
