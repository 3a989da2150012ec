"""Keyboard-wedge readers: USB readers that "type" the UID in hex and press Enter.

Such a reader is a keyboard to the system, so its keys arrive wherever the focus is. An
application-wide event filter tells a scan from a person by timing: a scan is a burst of hex
keys, each within ``max_gap_ms`` of the previous one, ending with Enter. Hex keys are held back
while they may still be part of a scan, so a scanned UID never lands in a text field; when the
burst turns out to be typing (a pause, another key, Enter too early), the held keys are given
back to the widget they were meant for, in order.

Why only spontaneous KeyPress events whose receiver is the focus widget: under X11 one key
event reaches an application-wide filter several times (the window, the focused widget, then
each parent the event propagates to when a widget ignores it). Counting it more than once
doubles characters; the keys this filter sends back are not spontaneous, so they pass by.
"""

from __future__ import annotations

import logging
import time

import shiboken6
from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication, QWidget

from shared.ids import mask_uid, normalize_uid
from terminal.readers.base import BraceletReader, ReaderState

log = logging.getLogger(__name__)

HEX = frozenset("0123456789abcdefABCDEF")
MODIFIER_KEYS = frozenset(
    {
        Qt.Key.Key_Shift,
        Qt.Key.Key_Control,
        Qt.Key.Key_Alt,
        Qt.Key.Key_AltGr,
        Qt.Key.Key_Meta,
        Qt.Key.Key_CapsLock,
        Qt.Key.Key_NumLock,
    }
)
ENTER_KEYS = frozenset({Qt.Key.Key_Return, Qt.Key.Key_Enter})
# Readers send upper-case hex with Shift and may use the keypad; Ctrl/Alt/Meta mean a shortcut.
SCAN_MODIFIERS = Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.KeypadModifier
LISTENING = "keyboard reader listening"


class WedgeReader(BraceletReader):
    """Lives in Qt's event loop: start and stop it on the GUI thread."""

    kind = "wedge"

    def __init__(self, max_gap_ms: int = 50, min_length: int = 8) -> None:
        super().__init__()
        if max_gap_ms <= 0 or min_length < 8:
            raise ValueError("A wedge scan needs a positive key gap and at least 8 characters.")
        self.max_gap_ms = max_gap_ms
        self.min_length = min_length
        self._filter: _ScanFilter | None = None

    def _start(self) -> None:
        app = QCoreApplication.instance()
        if not isinstance(app, QApplication):
            raise RuntimeError("The keyboard-wedge reader needs the terminal's window to be open.")
        self._filter = _ScanFilter(self)
        app.installEventFilter(self._filter)
        # A keyboard cannot be told apart from a wedge reader while idle, so there is no
        # "unplugged" state to report: the reader is as present as the keyboard.
        self._set_state(ReaderState.CONNECTED, LISTENING)

    def _stop(self) -> None:
        scan_filter, self._filter = self._filter, None
        if scan_filter is None:
            return
        app = QCoreApplication.instance()
        if app is not None:
            app.removeEventFilter(scan_filter)
        scan_filter.give_back()
        scan_filter.deleteLater()

    def _scanned(self, text: str) -> bool:
        """Called by the filter with a burst that ended in Enter; False if it is no UID."""
        try:
            uid = normalize_uid(text)
        except ValueError:
            return False
        log.info("bracelet %s typed by the wedge reader", mask_uid(uid))
        self._emit_tap(uid)
        return True


class _Held:
    __slots__ = ("key", "modifiers", "target", "text")

    def __init__(self, target: QWidget, event: QKeyEvent) -> None:
        self.target = target
        self.key = event.key()
        self.modifiers = event.modifiers()
        self.text = event.text()


class _ScanFilter(QObject):
    def __init__(self, reader: WedgeReader) -> None:
        super().__init__()
        self._reader = reader
        self._held: list[_Held] = []
        self._last_ms = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        # The timer only decides when a person's keys are shown; whether a burst is a scan is
        # decided from the key events' own times. Waiting a few gaps keeps a scan intact when
        # the GUI thread was busy and its keys arrive late.
        self._timer.setInterval(reader.max_gap_ms * 3)
        self._timer.timeout.connect(self.give_back)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.KeyPress or not event.spontaneous():
            return False
        if not isinstance(watched, QWidget) or not _first_receiver(watched):
            return False
        assert isinstance(event, QKeyEvent)
        key = event.key()
        if key in MODIFIER_KEYS:
            return False
        now = _event_ms(event)
        in_burst = bool(self._held) and now - self._last_ms <= self._reader.max_gap_ms
        text = event.text()
        if len(text) == 1 and text in HEX and not (event.modifiers() & ~SCAN_MODIFIERS):
            if self._held and not in_burst:
                self.give_back()
            self._held.append(_Held(watched, event))
            self._last_ms = now
            self._timer.start()
            return True
        if key in ENTER_KEYS and in_burst and len(self._held) >= self._reader.min_length:
            scanned = "".join(held.text for held in self._held)
            if self._reader._scanned(scanned):
                self._held.clear()
                self._timer.stop()
                return True
        self.give_back()
        return False

    def give_back(self) -> None:
        """The held keys were typing after all: deliver them where they were going."""
        self._timer.stop()
        held, self._held = self._held, []
        for item in held:
            if not shiboken6.isValid(item.target):
                continue
            replay = QKeyEvent(QEvent.Type.KeyPress, item.key, item.modifiers, item.text)
            QCoreApplication.sendEvent(item.target, replay)


def _first_receiver(widget: QWidget) -> bool:
    """Key events go first to the keyboard grabber, an open popup's focus, the focus widget,
    or else the window; only there does the filter look at them."""
    popup = QApplication.activePopupWidget()
    first = (
        QWidget.keyboardGrabber()
        or (popup.focusWidget() or popup if popup is not None else None)
        or QApplication.focusWidget()
    )
    return widget is first if first is not None else widget.isWindow()


def _event_ms(event: QKeyEvent) -> float:
    """The key's own time (X server time under X11), so a busy GUI thread does not blur it."""
    stamp = event.timestamp()
    return float(stamp) if stamp else time.monotonic() * 1000.0
