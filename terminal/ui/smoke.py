"""``pos-terminal --smoke-test``: prove that an installed or bundled till starts on this
machine, then exit.

An installer (docs/install.md) and the PyInstaller bundle's test need one yes-or-no that the
real program, with its real Qt platform plugin, paints its first screen and finds the files
it loads at run time (compiled translations, answer sounds). Those are exactly what a bundle
or a wheel forgets, and a forgotten one shows only on a school's screen: a till left in
English, or a silent refusal. So after the first paint of the screen the app chose, this
prints one JSON line and quits:

``{"screen": "EnrollView", "title": "Cafeteria POS", "platform": "xcb",
"translations": {"ar": true}, "sounds": {"approved": true, ...}, "ok": true}``

Exit code 0 when every translation and sound loaded, 1 when one is missing or nothing was
painted within :data:`FIRST_PAINT_TIMEOUT_MS`.
"""

from __future__ import annotations

import json
import sys
import wave
from typing import Any

from PySide6.QtCore import QEvent, QObject, QTimer, QTranslator
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QWidget

from terminal.settings import LANGUAGES
from terminal.ui import i18n, sound
from terminal.ui.main_window import MainWindow

FIRST_PAINT_TIMEOUT_MS = 30_000


def checks() -> dict[str, Any]:
    """What the till loads from files at run time, each loaded for real (not only found)."""
    translations = {
        lang: QTranslator().load(str(i18n.qm_path(lang)))
        for lang in LANGUAGES if lang != i18n.SOURCE_LANGUAGE
    }
    sounds = {}
    for kind in sound.KINDS:
        try:
            sounds[kind] = bool(sound.scaled_frames(kind, 100))
        except (OSError, EOFError, ValueError, wave.Error):
            sounds[kind] = False
    return {"translations": translations, "sounds": sounds}


class _FirstPaint(QObject):
    """Reports once, after the first paint event of the watched screen has been handled."""

    def __init__(self, window: MainWindow, app: QApplication) -> None:
        super().__init__(window)
        self.window = window
        self.app = app
        self.done = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and not self.done:
            self.done = True
            QTimer.singleShot(0, self.report)  # after the paint itself has run
        return False

    def report(self) -> None:
        view = self.window.current_view()
        doc: dict[str, Any] = {
            "screen": type(view).__name__ if view is not None else None,
            "title": self.window.windowTitle(),
            "platform": QGuiApplication.platformName(),
            **checks(),
        }
        doc["ok"] = all(doc["translations"].values()) and all(doc["sounds"].values())
        _emit(doc)
        self.app.exit(0 if doc["ok"] else 1)

    def timed_out(self) -> None:
        if not self.done:
            self.done = True
            _emit({"screen": None, "ok": False,
                   "error": f"nothing painted within {FIRST_PAINT_TIMEOUT_MS // 1000} s"})
            self.app.exit(1)


def _emit(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def arm(window: MainWindow, app: QApplication) -> None:
    """Call after ``window.start()`` (which picks the first screen) and before ``app.exec()``."""
    watcher = _FirstPaint(window, app)
    view: QWidget = window.current_view() or window
    view.installEventFilter(watcher)
    QTimer.singleShot(FIRST_PAINT_TIMEOUT_MS, watcher.timed_out)
