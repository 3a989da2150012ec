"""A till for the counter tests: the real window on the real core, with an offline snapshot
(v1.1 fields: grades, homerooms, restrictions, allergens, positions), the simulated reader
started (taps come from another thread, as hardware's do) and no sync thread unless asked,
so the status bar says what the test set up."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytestqt.qtbot import QtBot

from shared.protocol import SnapshotResponse
from terminal.app import create_window
from terminal.core import Terminal
from terminal.readers.simulated import SimulatedReader
from terminal.store import snapshot, state
from terminal.sync.backoff import Backoff
from terminal.ui.main_window import MainWindow
from terminal.ui.sound import SoundPlayer
from tests.ui.conftest import SETTINGS, SIZE, offline_terminal, wallet

UNREACHABLE = "http://127.0.0.1:9"

PRODUCTS: list[dict[str, Any]] = [
    {"product_id": "water", "name": "Water 330ml", "price": 150, "category": "Drinks",
     "active": True, "position": 1},
    {"product_id": "juice", "name": "Orange juice", "price": 300, "category": "Drinks",
     "active": True, "position": 2},
    {"product_id": "cookie", "name": "Peanut cookie", "price": 250, "category": "Snacks",
     "active": True, "position": 3, "allergens": ["peanut"]},
    {"product_id": "laban", "name": "Laban", "price": 250, "category": "Drinks",
     "active": True, "position": 4, "allergens": ["milk"]},
    {"product_id": "rice", "name": "Rice & chicken", "price": 1500, "category": "Meals",
     "active": True, "position": 5},
]

UIDS = {"maryam": "04AA000000000001", "omar": "04AA000000000002",
        "sara4": "04AA000000000003", "sara6": "04AA000000000004",
        "huda": "04AA000000000005"}
WALLETS = [
    wallet("w-maryam", "Maryam Q.", 5000, grade="Grade 4", homeroom="4B",
           restrictions={"allergens": ["peanut"], "blocked_categories": ["Meals"]}),
    wallet("w-omar", "Omar B.", 200, grade="Grade 2", homeroom="2A"),
    wallet("w-sara4", "Sara K.", 4000, grade="Grade 4", homeroom="4A"),
    wallet("w-sara6", "Sara K.", 3000, grade="Grade 6", homeroom="6C"),
    {**wallet("w-huda", "Huda A.", 9000, grade="Grade 1", homeroom="1A"), "daily_limit": 500},
]
CREDENTIALS = [{"uid": UIDS[key], "wallet_id": f"w-{key}", "status": "active"}
               for key in UIDS]


class RecordingPlayer(SoundPlayer):
    """A player that keeps what it was asked to play (a hand-written fake of the interface)."""

    def __init__(self) -> None:
        super().__init__(70, False)
        self.played: list[str] = []

    def _output(self, kind: str, wav_data: bytes) -> None:
        self.played.append(kind)


@dataclass
class Till:
    window: MainWindow
    terminal: Terminal
    reader: SimulatedReader
    qtbot: QtBot
    last_tap: dict[str, float] = field(default_factory=dict)

    @property
    def sale(self) -> Any:
        return self.window.sale_view

    @property
    def panel(self) -> Any:
        return self.window.sale_view.result

    def tap(self, key_or_uid: str, kind: str | None = None) -> None:
        """Tap from another thread; wait for an answer of ``kind`` painted (if given)."""
        uid = UIDS.get(key_or_uid, key_or_uid)
        since = time.monotonic() - self.last_tap.get(uid, -10.0)
        if since < 1.1:  # the same bracelet within a second is one tap (TapGuard): wait
            self.qtbot.wait(int((1.1 - since) * 1000) + 1)
        self.last_tap[uid] = time.monotonic()
        painted = self.panel.paint_count
        thread = threading.Thread(target=self.reader.tap, args=(uid,))
        thread.start()
        thread.join()
        if kind is not None:
            self.qtbot.waitUntil(lambda: self.panel.outcome is not None
                                 and self.panel.state == kind
                                 and self.panel.paint_count > painted, timeout=5000)

    def add(self, product_id: str, times: int = 1) -> None:
        from PySide6.QtCore import Qt

        for _ in range(times):
            self.qtbot.mouseClick(self.sale.product_buttons[product_id],
                                  Qt.MouseButton.LeftButton)


def open_till(qtbot: QtBot, tmp_path: Path, *, size: tuple[int, int] = SIZE,
              products: list[dict[str, Any]] | None = None,
              player: SoundPlayer | None = None, log_in: bool = True,
              start_sync: bool = False, language: str | None = None) -> Till:
    term = offline_terminal(tmp_path / "till", UNREACHABLE, WALLETS, CREDENTIALS,
                            products=PRODUCTS if products is None else products)
    if language is not None:  # this till's stored choice, applied when the window is made
        term.update_local_settings(language=language)
    reader = SimulatedReader()
    window = create_window(tmp_path / "till", terminal=term, reader=reader,
                           backoff=Backoff(base=30.0, cap=60.0), player=player)
    qtbot.addWidget(window)
    window.resize(*size)
    window.show()
    if start_sync:
        window.start()
    else:
        window.reader_bridge.start()
        window.refresh_status()
        window._tick_clock()
        window.show_login()
    qtbot.waitUntil(lambda: window.status_bar.reader_connected, timeout=5000)
    if log_in:
        window.login_view.logged_in.emit("cash1", "Amal")
        qtbot.waitUntil(lambda: window.current_view() is window.sale_view, timeout=5000)
    return Till(window, term, reader, qtbot)


def apply_products(term: Terminal, products: list[dict[str, Any]]) -> None:
    """A snapshot delta with these product rows, written by the real snapshot code (what a
    pull from the server does)."""
    now = datetime.now(UTC)
    page = SnapshotResponse.model_validate({
        "cursor": "c2", "full": False, "more": False, "server_time": now.isoformat(),
        "settings": SETTINGS, "wallets": [], "credentials": [], "products": products,
        "cashiers": []})
    epoch = state.next_epoch(term.db)
    snapshot.apply_page(term.db, page, epoch)
    snapshot.finish_pull(term.db, epoch=epoch, cursor="c2", full=False, at=now,
                         server_time=now)
