"""The keyboard-wedge reader through Qt key events (pytest-qt, offscreen).

QTest's key clicks arrive back to back (a reader's speed); a person is simulated with pauses
longer than the 50 ms gap. keyClicks does not show X11's repeated delivery to parents; the
Xvfb/xdotool test (test_wedge_x11.py) does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit, QVBoxLayout, QWidget
from pytestqt.qtbot import QtBot

from terminal.readers.base import ReaderState
from terminal.readers.wedge import WedgeReader
from tests.readers.event_log import EventLog

HUMAN_PAUSE_MS = 120


@pytest.fixture
def field(qtbot: QtBot) -> Iterator[QLineEdit]:
    window = QWidget()
    layout = QVBoxLayout(window)
    line = QLineEdit()
    layout.addWidget(line)
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitActive(window)
    line.setFocus()
    qtbot.waitUntil(line.hasFocus)
    yield line  # a generator keeps ``window`` (and so the line edit) alive during the test


@pytest.fixture
def wedge(events: EventLog) -> Iterator[WedgeReader]:
    reader = WedgeReader()
    reader.start(events)
    yield reader
    reader.stop()


def type_slowly(qtbot: QtBot, widget: QWidget, text: str) -> None:
    for char in text:
        qtbot.keyClick(widget, char)
        qtbot.wait(HUMAN_PAUSE_MS)


def test_scan_is_one_tap_and_never_reaches_the_field(
    qtbot: QtBot, field: QLineEdit, wedge: WedgeReader, events: EventLog
) -> None:
    assert events.states[-1].state is ReaderState.CONNECTED
    entered: list[str] = []
    field.returnPressed.connect(lambda: entered.append(field.text()))
    qtbot.keyClicks(field, "04a1b2c3d4e580")
    qtbot.keyClick(field, Qt.Key.Key_Return)
    assert events.taps == ["04A1B2C3D4E580"]
    qtbot.wait(300)  # past the give-back timer: nothing is released later either
    assert field.text() == ""
    assert entered == []  # the scan's Enter was swallowed too


def test_slow_typing_reaches_the_field_once_and_is_no_scan(
    qtbot: QtBot, field: QLineEdit, wedge: WedgeReader, events: EventLog
) -> None:
    entered: list[str] = []
    field.returnPressed.connect(lambda: entered.append(field.text()))
    type_slowly(qtbot, field, "deadbeef")
    qtbot.keyClick(field, Qt.Key.Key_Return)
    assert events.taps == []
    assert field.text() == "deadbeef"
    assert entered == ["deadbeef"]


def test_fast_typing_that_is_no_scan_is_given_back_in_order(
    qtbot: QtBot, field: QLineEdit, wedge: WedgeReader, events: EventLog
) -> None:
    qtbot.keyClicks(field, "cafe")  # a fast burst, then a key that cannot be in a UID
    qtbot.keyClick(field, "x")
    qtbot.keyClicks(field, "12ab")  # a fast burst that just stops: given back after a pause
    qtbot.waitUntil(lambda: field.text() == "cafex12ab", timeout=2000)
    qtbot.keyClicks(field, "0123")  # too short for a UID even though it ends with Enter
    qtbot.keyClick(field, Qt.Key.Key_Return)
    assert field.text() == "cafex12ab0123"
    assert events.taps == []


def test_scan_mixed_into_typing_only_takes_the_scan(
    qtbot: QtBot, field: QLineEdit, wedge: WedgeReader, events: EventLog
) -> None:
    type_slowly(qtbot, field, "ab")
    qtbot.keyClicks(field, "04112233445566")
    qtbot.keyClick(field, Qt.Key.Key_Return)
    type_slowly(qtbot, field, "c")
    assert events.taps == ["04112233445566"]
    qtbot.waitUntil(lambda: field.text() == "abc", timeout=2000)


def test_stopped_reader_lets_every_key_through(
    qtbot: QtBot, field: QLineEdit, events: EventLog
) -> None:
    reader = WedgeReader()
    reader.start(events)
    qtbot.keyClicks(field, "0411")
    reader.stop()  # keys held at that moment are given back, none lost
    qtbot.keyClicks(field, "223344")
    qtbot.keyClick(field, Qt.Key.Key_Return)
    assert field.text() == "0411223344"
    assert events.taps == []
    assert events.states[-1].state is ReaderState.STOPPED


def test_too_short_scans_are_refused_as_configuration() -> None:
    with pytest.raises(ValueError, match="at least 8"):
        WedgeReader(min_length=4)
