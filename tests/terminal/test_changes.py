"""Each mutation of the core tells its listeners exactly what changed, after it committed, and
a read tells them nothing (the cashier app redraws on these instead of polling)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from terminal.changes import Change
from terminal.core import Terminal
from terminal.errors import SaleRefused
from terminal.store import state
from terminal.store.db import DB_FILENAME

from .conftest import Page, SettableClock, bracelet, offline_terminal, wallet

UID = "04A1B2C3D4E5F6"


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Change] = []

    def __call__(self, change: Change) -> None:
        self.seen.append(change)


def till(tmp_path: Path, clock: SettableClock | None = None) -> tuple[Terminal, Recorder]:
    term = offline_terminal(tmp_path / "t", Page(wallets=[wallet("w1", 5000)],
                                                 credentials=[bracelet(UID, "w1")]), clock)
    recorder = Recorder()
    term.subscribe(recorder)
    return term, recorder


def test_sale_and_void_emit_sales_and_sync_after_commit(tmp_path: Path) -> None:
    term, recorder = till(tmp_path)
    seen_in_file: list[int] = []

    def look(change: Change) -> None:  # another connection sees the row: it is committed
        with sqlite3.connect(term.data_dir / DB_FILENAME) as other:
            seen_in_file.append(other.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    term.subscribe(look)
    receipt = term.record_sale("cash1", [("water", 1)], uid=UID)
    assert recorder.seen == [Change.SALES | Change.SYNC] and seen_in_file == [1]
    term.void(receipt.ref, "cash1")
    assert recorder.seen[1:] == [Change.SALES | Change.SYNC] and seen_in_file[1:] == [2]


def test_refusals_and_reads_emit_nothing(tmp_path: Path) -> None:
    term, recorder = till(tmp_path)
    receipt = term.record_sale("cash1", [("water", 1)], uid=UID)
    recorder.seen.clear()
    with pytest.raises(SaleRefused):
        term.record_sale("cash1", [("meal", 10)], uid=UID)
    with pytest.raises(SaleRefused):
        term.void("no-such-ref", "cash1")
    term.products(), term.cashiers(), term.history(), term.needing_review()
    term.wallet_for_uid(UID), term.wallet_view("w1"), term.search_wallets("Stu")
    term.balance_estimate("w1"), term.alerts(), term.selling_stopped(), term.clock_behind()
    term.status(), term.currency(), term.enrolled(), term.local_settings(), term.school_now()
    term.void_refusal(receipt.ref), term.item_refusal("water", uid=UID), term.bracelets()
    term.verify_pin("cash1", "1234"), term.school_settings()
    assert recorder.seen == []


def test_reader_settings_and_review_emit_their_flag_once(tmp_path: Path) -> None:
    term, recorder = till(tmp_path)
    term.set_reader("simulated: ready")
    term.set_reader("simulated: ready")             # the same again: nothing changed
    term.set_reader("pcsc: no reader")
    assert recorder.seen == [Change.READER, Change.READER]
    recorder.seen.clear()
    term.update_local_settings(language="ar")
    term.update_local_settings(language="ar")       # already so
    term.update_local_settings(sound_volume=20, sound_muted=True)
    assert recorder.seen == [Change.SETTINGS, Change.SETTINGS]
    recorder.seen.clear()
    term.dismiss_review()                           # nothing to dismiss
    assert recorder.seen == []


def test_unsubscribe_and_a_failing_listener(tmp_path: Path) -> None:
    term, recorder = till(tmp_path)

    def broken(change: Change) -> None:
        raise RuntimeError("a view crashed")

    unsubscribe = term.subscribe(broken)
    term.record_sale("cash1", [("water", 1)], uid=UID)   # still recorded, still told
    assert len(recorder.seen) == 1
    unsubscribe()
    unsubscribe()                                        # twice is harmless
    term.record_sale("cash1", [("water", 1)], uid=UID)
    assert len(recorder.seen) == 2


def test_unreachable_server_is_a_sync_change_only(tmp_path: Path) -> None:
    term, recorder = till(tmp_path)
    report = term.sync_once()                 # the helper's server URL is a closed port
    assert report.unreachable
    assert recorder.seen == [Change.SYNC]


def test_sync_against_the_real_server(live_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    term = Terminal(tmp_path / "t")
    recorder = Recorder()
    term.subscribe(recorder)
    school = live_server.demo["schools"][0]
    enrolled = term.enroll(live_server.url, school["enrollment_code"], "Counter 1")
    assert enrolled.first_snapshot.completed, enrolled.first_snapshot.error
    everything = Change.ENROLLMENT | Change.SNAPSHOT | Change.SETTINGS | Change.SYNC
    assert recorder.seen == [everything]           # one emission, not one per step

    recorder.seen.clear()
    report = term.sync_once()                      # nothing happened anywhere
    assert report.completed, report.error
    assert recorder.seen == [Change.SYNC]

    recorder.seen.clear()
    w = next(w for w in school["wallets"] if w["daily_limit"] is None
             and w["status"] == "active" and not any((w.get("restrictions") or {}).values()))
    product = next(p for p in school["products"] if not p.get("allergens"))
    term.record_sale(school["cashiers"][0]["cashier_id"], [(product["product_id"], 1)],
                     uid=w["credential_uid"])
    report = term.sync_once()
    assert report.completed and report.counts["applied"] == 1, report.error
    # the push result moved the sale; the wallet's new balance came back in the delta
    assert recorder.seen == [Change.SALES | Change.SYNC,
                             Change.SALES | Change.SNAPSHOT | Change.SYNC]
    assert state.get_sync_state(term.db).settings is not None


def test_school_settings_changed_on_the_server_is_a_settings_change(
        live_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    term = Terminal(tmp_path / "t")
    school = live_server.demo["schools"][0]
    assert term.enroll(live_server.url, school["enrollment_code"], "C1").first_snapshot.completed
    before = term.school_settings().offline_max_sale
    recorder = Recorder()
    term.subscribe(recorder)
    db_path = live_server.db_url.removeprefix("sqlite:///")
    with sqlite3.connect(db_path) as server_db:       # as the console's settings page does
        server_db.execute("UPDATE schools SET offline_max_sale = offline_max_sale + 100"
                          " WHERE school_id = ?", (school["school_id"],))
    report = term.sync_once()
    assert report.completed, report.error
    assert len(recorder.seen) == 1
    assert Change.SETTINGS in recorder.seen[0] and Change.SYNC in recorder.seen[0]
    assert Change.SALES not in recorder.seen[0]
    assert term.school_settings().offline_max_sale == before + 100
