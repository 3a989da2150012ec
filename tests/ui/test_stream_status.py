"""The status bar says whether the server's updates arrive live (the till holds the event
stream) or by polling, in English and Arabic, redrawn from the core's SYNC change when it
flips. Real widgets, the real core; the last test runs the real app against the real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QApplication

from terminal.changes import Change
from terminal.core import Terminal
from terminal.readers.simulated import SimulatedReader
from terminal.ui import i18n
from terminal.ui.status_bar import StatusBar
from tests.ui.conftest import offline_terminal, open_app, plain, screenshot, wallet


@pytest.fixture
def term(tmp_path: Path) -> Iterator[Terminal]:
    t = offline_terminal(tmp_path / "t", "http://127.0.0.1:9", [wallet("w1", "Sara", 1000)], [])
    yield t
    t.close()


def words(bar: StatusBar) -> str:
    """The updates label as a person reads it (the coloured dot's markup left out)."""
    return plain(bar.updates.text()).rsplit("</span>", 1)[-1].strip()


def test_live_and_polling_in_english_and_arabic(qtbot: Any, qapp: QApplication,
                                                term: Terminal) -> None:
    bar = StatusBar()
    qtbot.addWidget(bar)
    flips: list[Change] = []
    term.subscribe(flips.append)

    bar.show_status(term.status(), "SAR")
    assert term.status()["updates"] == "polling"
    assert (bar.updates_mode, words(bar)) == ("polling", "Polling")
    assert "next check" in bar.updates.toolTip()

    term.set_live_updates(True)
    term.set_live_updates(True)               # no flip, no redraw
    assert flips == [Change.SYNC]
    bar.show_status(term.status(), "SAR")
    assert (bar.updates_mode, words(bar)) == ("live", "Live")
    assert "within seconds" in bar.updates.toolTip()

    i18n.switch(qapp, "ar")
    QApplication.processEvents()             # LanguageChange redraws what was shown
    assert words(bar) == "مباشر"
    assert bar.updates.toolTip() == "يصل شحن الرصيد وحظر الأساور خلال ثوانٍ."
    term.set_live_updates(False)
    assert flips == [Change.SYNC, Change.SYNC]
    bar.show_status(term.status(), "SAR")
    assert words(bar) == "تحديث دوري"
    bar.resize(1024, bar.height())
    screenshot(bar, "status-bar-polling-ar")
    i18n.switch(qapp, "en")
    QApplication.processEvents()
    assert words(bar) == "Polling"


def test_offline_revoked_or_not_enrolled_show_no_updates_word(qtbot: Any,
                                                              term: Terminal) -> None:
    """"Offline" and "Not authorized" say it all; a "Live" next to them would contradict."""
    bar = StatusBar()
    qtbot.addWidget(bar)
    term.set_live_updates(True)
    status = term.status()
    for changed in ({"server_reachable": False}, {"device_revoked": True},
                    {"enrolled": False}):
        bar.show_status({**status, **changed}, "SAR")
        assert bar.updates_mode is None and bar.updates.text() == ""
    bar.show_status(status, "SAR")
    assert words(bar) == "Live"


def test_the_app_shows_live_once_it_holds_the_stream(qtbot: Any, live_server: Any,
                                                    tmp_path: Path) -> None:
    school = live_server.demo["schools"][0]
    window, terminal = open_app(qtbot, tmp_path / "app", live_server.url,
                                school["enrollment_code"], "Counter 5", SimulatedReader())
    window.start()
    try:
        qtbot.waitUntil(lambda: window.status_bar.updates_mode == "live", timeout=20000)
        assert words(window.status_bar) == "Live"
        screenshot(window, "status-bar-live")
        assert terminal.status()["updates"] == "live"
        live_server.stop()                   # the stream drops: offline, polling again
        qtbot.waitUntil(lambda: terminal.status()["updates"] == "polling", timeout=10000)
        qtbot.waitUntil(lambda: window.status_bar.online is False, timeout=10000)
        assert window.status_bar.updates_mode is None
    finally:
        window.close()
