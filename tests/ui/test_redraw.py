"""Redraw on change, not on a timer: an idle till reads nothing from its store, and a
mutation redraws exactly the views that show what it changed.

Statements are counted with SQLite's own trace callback on every connection the core opens
(GUI thread, sync thread, worker threads), through a subclass of the real core."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from sqlite_utils import Database

from terminal.app import create_window
from terminal.core import Terminal
from terminal.readers.simulated import SimulatedReader
from terminal.sync.backoff import Backoff
from tests.ui.conftest import SIZE
from tests.ui.till import CREDENTIALS, PRODUCTS, UNREACHABLE, WALLETS, open_till


class SteadyBackoff(Backoff):
    """Waits the whole cap after a failure (the real one draws a random delay below it, which
    could start a retry inside the measured idle seconds)."""

    def next_delay(self, retry_after: float | None = None) -> float:
        self.failures += 1
        return self.cap


class CountingTerminal(Terminal):
    """The real core; every statement any of its connections runs is counted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.statements: list[str] = []
        self._traced: set[int] = set()
        self._count_lock = threading.Lock()

    @property
    def db(self) -> Database:
        db = super().db
        if id(db.conn) not in self._traced:
            self._traced.add(id(db.conn))
            db.conn.set_trace_callback(self._trace)
        return db

    def _trace(self, statement: str) -> None:
        with self._count_lock:
            self.statements.append(statement)


def test_an_idle_window_reads_nothing_from_the_store(qtbot: QtBot, tmp_path: Path) -> None:
    from tests.ui.conftest import offline_terminal

    offline_terminal(tmp_path / "t", UNREACHABLE, WALLETS, CREDENTIALS,
                     products=PRODUCTS).close()
    term = CountingTerminal(tmp_path / "t")
    window = create_window(tmp_path / "t", terminal=term, reader=SimulatedReader(),
                           backoff=SteadyBackoff(base=60.0, cap=60.0))
    qtbot.addWidget(window)
    window.resize(*SIZE)
    window.show()
    window.start()  # reader, sync thread (its first try fails: the server is unreachable)
    qtbot.waitUntil(lambda: window.status_bar.online is False, timeout=10000)
    window.login_view.logged_in.emit("cash1", "Amal")
    qtbot.waitUntil(lambda: window.current_view() is window.sale_view)
    qtbot.wait(500)  # let the first sync's changes settle

    before = len(term.statements)
    qtbot.wait(3000)
    idle = term.statements[before:]
    assert idle == [], f"{len(idle)} statements in 3 s of idle: {idle[:5]}"

    # the clock keeps ticking without the store
    window._tick_clock()
    assert len(term.statements) == before
    window.shutdown()


def test_a_sale_redraws_status_and_a_void_redraws_the_open_history(qtbot: QtBot,
                                                                   tmp_path: Path) -> None:
    till = open_till(qtbot, tmp_path)
    window, sale = till.window, till.sale
    status_before = window.redraws.get("status", 0)
    history_before = window.redraws.get("history", 0)
    till.add("water")
    till.tap("sara4", "approved")
    qtbot.waitUntil(lambda: window.status_bar.queue.text().startswith("To sync: 1"))
    assert window.redraws["status"] == status_before + 1  # once, for the sale's changes
    assert window.redraws.get("history", 0) == history_before  # not shown: not redrawn
    assert window.redraws.get("products", 0) == 1  # the catalogue did not change

    qtbot.keyClick(sale, Qt.Key.Key_F4)
    history = window.history_view
    assert len(history.model.rows) == 1
    drawn = window.redraws.get("history", 0)
    # a void made by the core (as the CLI or a test would) reaches the open history by itself
    till.terminal.void(till.terminal.history(1)[0].ref, "cash1")
    qtbot.waitUntil(lambda: len(history.model.rows) == 2)
    assert window.redraws["history"] == drawn + 1
    assert window.status_bar.queue.text().startswith("To sync: 2")
    window.shutdown()
