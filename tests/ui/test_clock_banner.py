"""A terminal clock that went back shows as a red banner and refuses the sale in plain words;
setting the clock right takes both away. Real app on the real core, offscreen."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pytestqt.qtbot import QtBot

from terminal.app import create_window
from terminal.readers.simulated import SimulatedReader
from terminal.sync.backoff import Backoff
from tests.ui.conftest import SIZE, offline_terminal, screenshot, wallet

UID = "04AA000000000001"


class ShiftedClock:
    """The real time moved by ``offset``: what a terminal with a wrong clock reads."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def test_clock_behind_the_server_shows_a_banner_and_refuses_sales(qtbot: QtBot,
                                                                  tmp_path: Path) -> None:
    clock = ShiftedClock(timedelta(minutes=-30))  # the server said "now" at the last sync
    terminal = offline_terminal(tmp_path / "term", "http://127.0.0.1:9",
                                [wallet("w1", "Sara K.", 10_000)],
                                [{"uid": UID, "wallet_id": "w1", "status": "active"}],
                                clock=clock)
    reader = SimulatedReader()
    window = create_window(tmp_path / "term", terminal=terminal, reader=reader,
                           backoff=Backoff(base=0.2, cap=0.5))
    qtbot.addWidget(window)
    window.resize(*SIZE)
    window.show()
    window.start()
    window.counter.log_in("cash1", "Amal")
    window.show_sale()

    qtbot.waitUntil(lambda: bool(window.banner.texts())
                    and window.banner.texts()[0].startswith("This terminal's clock is behind"),
                    timeout=5000)
    assert window.banner.isVisible()
    assert window.banner.alerts[0].level == "problem"

    sale = window.sale_view
    sale.add_nth(1)
    threading.Thread(target=reader.tap, args=(UID,)).start()
    qtbot.waitUntil(lambda: sale.result.state == "refused", timeout=5000)
    assert "clock is behind" in sale.result.detail.text()
    assert terminal.status()["queued"] == 0
    screenshot(window, "clock_behind")
    assert (window.width(), window.height()) == SIZE

    clock.offset = timedelta(0)  # someone set the clock right
    window.refresh_status()
    assert not any("clock" in text for text in window.banner.texts())
    window.shutdown()
    window.close()
