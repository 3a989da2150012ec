"""Spec v1.1, the fleet as the server's last backup: a till keeps its sales for 60 days and,
when the server's ``acked_seq`` goes backwards (restored from a backup), re-sends every sale it
holds above it, oldest first, in batches, and says so in its status.

The server here is a hand-written subclass of the real :class:`SyncClient` that keeps the refs
it has applied, as a server's ledger would, and can "lose" everything above a seq. The drill
against a real server and a real backup is tests/server/test_backup_drill.py.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from shared.protocol import SalesPushResponse, SnapshotResponse
from terminal.core import Terminal
from terminal.store import outbox, state
from terminal.sync.client import SyncClient
from terminal.sync.cycle import run_cycle

from .conftest import T0, Page, SettableClock, bracelet, offline_terminal, wallet

UID = "04A1B2C3D4E5F6"
PAGE = Page(wallets=[wallet("w1", 100_000)], credentials=[bracelet(UID, "w1")])


class LedgerServer(SyncClient):
    """Answers pushes like the real server: ``applied`` the first time a ref arrives,
    ``duplicate`` after; ``acked_seq`` is the highest seq with every seq up to it received."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:9")
        self.seqs: dict[int, str] = {}
        self.pushes: list[list[int]] = []

    def push(self, sales: list[dict[str, Any]]) -> SalesPushResponse:
        self.pushes.append([s["seq"] for s in sales])
        results = []
        for sale in sales:
            status = "duplicate" if sale["seq"] in self.seqs else "applied"
            self.seqs[sale["seq"]] = sale["ref"]
            results.append({"ref": sale["ref"], "status": status,
                            **({"original_status": "applied"} if status == "duplicate" else {})})
        acked = 0
        while acked + 1 in self.seqs:
            acked += 1
        return SalesPushResponse.model_validate({
            "results": results, "acked_seq": acked, "missing_seqs": [],
            "server_time": T0.isoformat()})

    def snapshot(self, cursor: str | None) -> SnapshotResponse:
        """The wallet's balance as this ledger has it: every sale here is one water."""
        balance = 100_000 - 150 * len(self.seqs)
        return Page(wallets=[wallet("w1", balance)], credentials=PAGE.credentials
                    ).response(T0)

    def restore_from_backup_at(self, seq: int) -> None:
        """Everything above ``seq`` is gone, as after a restore from an older backup."""
        self.seqs = {s: ref for s, ref in self.seqs.items() if s <= seq}


def sell(term: Terminal, n: int) -> None:
    for _ in range(n):
        term.record_sale("cash1", [("water", 1)], uid=UID)


def test_refill_resends_oldest_first_in_batches_and_the_server_ends_whole(
        tmp_path: Path, clock: SettableClock) -> None:
    term = offline_terminal(tmp_path, PAGE, clock)
    server = LedgerServer()
    sell(term, 7)
    report = run_cycle(term.db, server, clock, batch_size=3)
    assert report.completed and report.refill_from_seq is None
    assert term.status()["acked_seq"] == 7 and term.status()["queued"] == 0
    estimate = term.balance_estimate("w1")
    assert estimate is not None

    server.restore_from_backup_at(2)
    sell(term, 1)  # seq 8, sold after the restore
    server.pushes.clear()
    report = run_cycle(term.db, server, clock, batch_size=3)
    assert report.completed, report.error
    assert report.refill_from_seq == 2
    # first the queue as it was (seq 8), then the refill from seq 3 on, oldest first, <= 3 each
    resent = [seq for push in server.pushes[1:] for seq in push]
    assert server.pushes[0] == [8]
    assert resent == [3, 4, 5, 6, 7, 8]
    assert all(len(push) <= 3 for push in server.pushes)
    assert sorted(server.seqs) == list(range(1, 9))      # nothing the till recorded is missing
    assert report.counts["applied"] == 1 + 5 and report.counts["duplicate"] == 1
    status = term.status()
    assert status["acked_seq"] == 8 and status["queued"] == 0
    assert status["refilling"] is False and status["refill_from_seq"] is None
    assert term.balance_estimate("w1") == estimate - 150   # no sale counted twice or dropped


def test_status_says_refilling_until_the_resend_is_done(tmp_path: Path,
                                                        clock: SettableClock) -> None:
    term = offline_terminal(tmp_path, PAGE, clock)
    sell(term, 4)
    rows = outbox.unacked_batch(term.db.conn, 0, 100)
    before = term.balance_estimate("w1")
    answer(term, rows, "applied", acked_seq=4)
    assert term.status()["refilling"] is False
    answer(term, [], "applied", acked_seq=1)  # an empty push to a restored server
    status = term.status()
    assert status["refilling"] is True and status["refill_from_seq"] == 1
    assert status["queued"] == 3
    # the re-queued sales are unanswered again: the estimate keeps counting them
    again = outbox.unacked_batch(term.db.conn, 0, 100)
    assert [r.seq for r in again] == [2, 3, 4] and {r.outcome for r in again} == {None}
    assert term.balance_estimate("w1") == before
    assert state.get_sync_state(term.db).highest_acked_seq == 1
    answer(term, again, "applied", acked_seq=4)
    assert term.status()["queued"] == 0
    assert state.end_refill(term.db) and term.status()["refilling"] is False


def test_a_gap_the_till_cannot_fill_is_not_resent_forever(tmp_path: Path,
                                                          clock: SettableClock) -> None:
    """Sales pruned here can never reach a server restored from a very old backup: after one
    refill the server's lower acked_seq is the new normal, not a loss every cycle."""
    term = offline_terminal(tmp_path, PAGE, clock)
    server = LedgerServer()
    sell(term, 4)
    run_cycle(term.db, server, clock)
    with term.db.atomic():  # seq 2 is gone from the till, as if pruned long ago
        term.db.conn.execute("DELETE FROM outbox WHERE seq = 2")
    server.restore_from_backup_at(1)
    first = run_cycle(term.db, server, clock)
    assert first.refill_from_seq == 1 and sorted(server.seqs) == [1, 3, 4]
    server.pushes.clear()
    second = run_cycle(term.db, server, clock)
    assert second.refill_from_seq is None and term.status()["refilling"] is False
    assert sum(len(p) for p in server.pushes) == 2  # 3 and 4 wait above the gap, as any gap


def test_acknowledged_sales_older_than_60_days_are_pruned_once_a_day(
        tmp_path: Path, clock: SettableClock) -> None:
    term = offline_terminal(tmp_path, PAGE, clock)
    server = LedgerServer()
    conn = term.db.conn
    sell(term, 3)
    run_cycle(term.db, server, clock)                    # seq 1-3 acknowledged on day 0
    for _ in range(2):                                    # seq 4 on day 30, seq 5 on day 61
        clock.advance(days=30.5)
        run_cycle(term.db, server, clock)                 # (a till sells only when in touch)
        sell(term, 1)
    run_cycle(term.db, server, clock)
    assert sorted(r.seq for r in term.history()) == [4, 5]

    clock.advance(days=30)                                # seq 4 is 61 days old now
    for change in ("outcome = 'rejected'", "acked = 0"):  # the review list, the queue
        with term.db.atomic():
            conn.execute(f"UPDATE outbox SET {change} WHERE seq = 4")
        with term.db.atomic():
            assert outbox.prune(conn, clock()) == 0
        with term.db.atomic():
            conn.execute("UPDATE outbox SET outcome = 'applied', acked = 1 WHERE seq = 4")
    # at most once a day: an hour after the last prune, the cycle leaves it
    state.record_pruned(term.db, clock() - timedelta(hours=1))
    run_cycle(term.db, server, clock)
    assert sorted(r.seq for r in term.history()) == [4, 5]
    clock.advance(days=1)
    run_cycle(term.db, server, clock)
    assert sorted(r.seq for r in term.history()) == [5]
    assert term.record_sale("cash1", [("water", 1)], uid=UID).seq == 6  # seqs never repeat


def answer(term: Terminal, rows: list[outbox.OutboxRow], status: str, acked_seq: int) -> None:
    response = SalesPushResponse.model_validate({
        "results": [{"ref": r.ref, "status": status} for r in rows],
        "acked_seq": acked_seq, "missing_seqs": [], "server_time": T0.isoformat()})
    outbox.store_results(term.db, rows, response, state.current_epoch(term.db), T0)
