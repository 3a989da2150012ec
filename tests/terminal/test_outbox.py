"""The outbox: gap-free seqs across restarts, results kept per sale, nothing forgotten before
the server acknowledges it, and a balance estimate that never counts a sale twice."""

from __future__ import annotations

from pathlib import Path

from shared.protocol import SalesPushResponse
from terminal.core import Terminal
from terminal.errors import SaleRefused
from terminal.store import outbox, state

from .conftest import T0, Page, bracelet, load_snapshot, offline_terminal, wallet

UID = "04A1B2C3D4E5F6"


def page(balance: int) -> Page:
    return Page(wallets=[wallet("w1", balance), wallet("w2", 900)],
                credentials=[bracelet(UID, "w1"), bracelet("04000000000002", "w2")])


def answer(term: Terminal, rows: list[outbox.OutboxRow], statuses: list[str],
           acked_seq: int, **extra: str) -> None:
    """Store a server answer exactly as the sync cycle does after a push."""
    response = SalesPushResponse.model_validate({
        "results": [{"ref": r.ref, "status": s, **extra} for r, s in zip(rows, statuses,
                                                                        strict=True)],
        "acked_seq": acked_seq, "missing_seqs": [], "server_time": T0.isoformat()})
    outbox.store_results(term.db, rows, response, state.current_epoch(term.db), T0)


def test_seq_is_gap_free_across_restarts(tmp_path: Path, clock) -> None:
    term = offline_terminal(tmp_path, page(100000), clock)
    seqs = [term.record_sale("cash1", [("water", 1)], uid=UID).seq for _ in range(3)]
    term.close()
    again = Terminal(tmp_path, clock=clock)
    seqs += [again.record_sale("cash1", [("water", 1)], uid=UID).seq for _ in range(2)]
    assert seqs == [1, 2, 3, 4, 5]
    rows = outbox.unacked_batch(again.db.conn, 0, 100)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert len({r.ref for r in rows}) == 5


def test_journal_is_wal_and_synchronous_full(tmp_path: Path, clock) -> None:
    term = offline_terminal(tmp_path, page(100), clock)
    conn = term.db.conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_results_are_kept_and_only_acked_rows_leave_the_queue(tmp_path: Path, clock) -> None:
    term = offline_terminal(tmp_path, page(100000), clock)
    for _ in range(4):
        term.record_sale("cash1", [("water", 1)], uid=UID)
    rows = outbox.unacked_batch(term.db.conn, 0, 100)
    # the server processed 1, 2 and 4 but acknowledges only up to 2 (3 never arrived)
    answer(term, [rows[0], rows[1], rows[3]], ["applied", "rejected", "conflict"], acked_seq=2)
    status = term.status()
    assert status["queued"] == 2 and status["acked_seq"] == 2
    assert [r.seq for r in outbox.unacked_batch(term.db.conn, 0, 100)] == [3, 4]
    review = term.needing_review()
    assert [(r.seq, r.outcome) for r in review] == [(2, "rejected"), (4, "conflict")]
    # a server restored from a backup reports less: row 2 is queued again, never lost
    answer(term, [], [], acked_seq=1)
    assert [r.seq for r in outbox.unacked_batch(term.db.conn, 0, 100)] == [2, 3, 4]
    # every row is still there as history
    assert [r.seq for r in term.history()] == [4, 3, 2, 1]


def test_duplicate_resolves_to_the_original_outcome(tmp_path: Path, clock) -> None:
    term = offline_terminal(tmp_path, page(100000), clock)
    term.record_sale("cash1", [("water", 1)], uid=UID)
    term.record_sale("cash1", [("water", 1)], uid=UID)
    rows = outbox.unacked_batch(term.db.conn, 0, 100)
    response = SalesPushResponse.model_validate({
        "results": [{"ref": rows[0].ref, "status": "duplicate", "original_status": "applied"},
                    {"ref": rows[1].ref, "status": "duplicate", "original_status": "rejected",
                     "code": "wallet_closed"}],
        "acked_seq": 2, "missing_seqs": [], "server_time": T0.isoformat()})
    outbox.store_results(term.db, rows, response, 0, T0)
    got = {r.seq: (r.last_status, r.outcome, r.code) for r in term.history()}
    assert got == {1: ("duplicate", "applied", None), 2: ("duplicate", "rejected",
                                                          "wallet_closed")}


def test_balance_estimate_never_double_counts_after_a_snapshot(tmp_path: Path, clock) -> None:
    term = offline_terminal(tmp_path, page(5000), clock)
    term.record_sale("cash1", [("meal", 1)], uid=UID)                     # 5000 -> 3800
    term.record_sale("cash1", [("water", 1)], uid=UID)                    # -> 3650
    assert term.balance_estimate("w1") == 3650
    rows = outbox.unacked_batch(term.db.conn, 0, 100)

    # 1. The server applied the first sale; our snapshot is still the old one.
    answer(term, rows[:1], ["applied"], acked_seq=1)
    assert term.balance_estimate("w1") == 3650

    # 2. A snapshot pulled after that answer holds 3800 (the meal applied, the water not).
    load_snapshot(term, page(3800), clock())
    assert term.balance_estimate("w1") == 3650

    # 3. A snapshot that was requested *before* an answer arrived must not hide the sale:
    #    the pull takes its epoch, then the answer lands, then the page is written.
    epoch = state.next_epoch(term.db)
    answer(term, rows[1:], ["applied"], acked_seq=2)
    from terminal.store import snapshot
    snapshot.apply_page(term.db, page(3800).response(clock()), epoch)   # water not in it
    assert term.balance_estimate("w1") == 3650
    # and the next pull, which includes it, settles it
    load_snapshot(term, page(3650), clock())
    assert term.balance_estimate("w1") == 3650

    # 4. A top-up arriving in a snapshot shows at once.
    load_snapshot(term, page(13650), clock())
    assert term.balance_estimate("w1") == 13650


def test_rejected_sales_are_not_subtracted_from_the_estimate(tmp_path: Path, clock) -> None:
    term = offline_terminal(tmp_path, page(5000), clock)
    term.record_sale("cash1", [("meal", 1)], uid=UID)
    rows = outbox.unacked_batch(term.db.conn, 0, 100)
    answer(term, rows, ["rejected"], acked_seq=1, code="wallet_closed")
    assert term.balance_estimate("w1") == 5000


def test_void_rules(tmp_path: Path, clock) -> None:
    term = offline_terminal(tmp_path, page(5000), clock)
    sale = term.record_sale("cash1", [("meal", 1), ("water", 2)], uid=UID)
    void = term.void(sale.ref, "cash1")
    assert (void.seq, void.total, void.wallet_id, void.balance_estimate) == (2, 1500, "w1",
                                                                             5000)
    row = outbox.get(term.db.conn, void.ref)
    assert row is not None and row.voids == sale.ref and row.lines == outbox.get(
        term.db.conn, sale.ref).lines  # type: ignore[union-attr]
    codes = []
    for ref, cashier in [(sale.ref, "cash1"), ("no-such-ref", "cash1"), (void.ref, "cash1"),
                         (sale.ref, "ghost")]:
        try:
            term.void(ref, cashier)
        except SaleRefused as exc:
            codes.append(getattr(exc, "code", None))
    assert codes == ["void_twice", "void_target_unknown", "void_target_unknown",
                     "cashier_unknown"]
    assert outbox.last_seq(term.db.conn) == 2


def test_full_snapshot_removes_rows_it_no_longer_lists(tmp_path: Path, clock) -> None:
    term = offline_terminal(tmp_path, page(5000), clock)
    smaller = Page(wallets=[wallet("w1", 5000)], credentials=[bracelet(UID, "w1")])
    load_snapshot(term, smaller, clock())
    assert term.wallet_for_uid("04000000000002") is None
    delta = Page(wallets=[wallet("w3", 10)], credentials=[], full=False)
    load_snapshot(term, delta, clock())
    assert term.wallet_view("w1") is not None and term.wallet_view("w3") is not None
