"""One sync cycle: push the whole queue in batches, then pull snapshot pages until done.

Only short write transactions touch the store (one per batch result, one per snapshot page),
so a sale being recorded at the same moment waits at most for one of them, never for the
network.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

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
from terminal.store.db import writing
from terminal.sync.client import SyncClient

log = logging.getLogger(__name__)

MAX_PAGES = 100_000
PRUNE_EVERY = timedelta(days=1)  # a server that says "more" forever must not hang the terminal

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
    # Set when the server's acked_seq went backwards (restored from a backup): the seq this
    # cycle re-sent from, oldest first (spec v1.1 refill).
    refill_from_seq: int | None = None
    # What this cycle changed in the store: always SYNC; SALES when a push result or an ack
    # moved an outbox row; SNAPSHOT when a page brought rows (a delta with nothing in it does
    # not); SETTINGS when the school's settings differ from the stored ones.
    changed: Change = Change.SYNC


def run_cycle(db: Database, client: SyncClient, clock: Callable[[], datetime],
              batch_size: int = MAX_SALES_PER_PUSH, *, pull_only: bool = False,
              push_only: bool = False) -> SyncReport:
    """``pull_only``: the server announced a change on the event stream, so the point is the
    delta. The push is then left out when nothing is queued; the empty push it would have
    been only asks for ``acked_seq``, which the regular poll keeps asking.

    ``push_only``: the event stream is live, so the pull is left out: a push that changed
    anything makes the server announce a new version on the stream, and the pull that event
    brings carries it (and whatever else changed meanwhile). Pulling here as well cost the
    server a second pull per sale at lunch rush (benchmarks/fleet.py). The balance estimate
    needs no pull in between: a sale applied after the wallet rows were pulled is still
    subtracted from them (see terminal/store/outbox.py)."""
    report = SyncReport()
    try:
        if not pull_only or outbox.queue_stats(db.conn).queued:
            _push_queue(db, client, clock, batch_size, report)
        if not push_only:
            _pull_snapshot(db, client, clock, report)
        state.record_synced(db, clock())
        report.completed = True
        _prune_daily(db, clock())
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
    still asks for ``acked_seq`` (it tells us if the server lost anything).

    An ``acked_seq`` below the highest one given before starts a refill (outbox.py): the rows
    above it are queued again and this pass goes on from there, so everything the server lost
    is re-sent in this same cycle. Reaching the end of the queue ends the refill."""
    after_seq = 0
    while True:
        batch = outbox.unacked_batch(db.conn, after_seq, batch_size)
        if not batch and after_seq:
            break
        highest = state.get_sync_state(db).highest_acked_seq
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
        if response.acked_seq < highest:
            after_seq = response.acked_seq
            report.refill_from_seq = min(after_seq, report.refill_from_seq or after_seq)
            log.warning("the server's acked_seq went back from %d to %d (restored from a "
                        "backup?): re-sending every sale held above it", highest, after_seq)
            continue
        if not batch or len(batch) < batch_size:
            break
        after_seq = batch[-1].seq
    state.end_refill(db)


def _prune_daily(db: Database, now: datetime) -> None:
    """Forget acknowledged sales older than the keeping period (outbox.prune), once a day at
    most: it reads the whole outbox, so not on every 15-second cycle."""
    last = state.get_sync_state(db).pruned_at
    if last is not None and now - last < PRUNE_EVERY:
        return
    with writing(db):
        gone = outbox.prune(db.conn, now)
    state.record_pruned(db, now)
    if gone:
        log.info("forgot %d acknowledged sales older than %d days", gone, outbox.KEEP_DAYS)


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
