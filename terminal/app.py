"""The cashier app's entry point: ``pos-terminal`` (or ``python -m terminal``) with no
sub-command.

It builds the QApplication, the core :class:`~terminal.core.Terminal`, the bracelet reader
chosen with ``--reader``, and the main window. With ``--server`` and ``--enroll-code`` a
terminal that is not enrolled yet enrolls by itself on first start (the demo launcher uses
that); an enrolled one ignores them.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import QApplication

from terminal.core import Terminal
from terminal.readers.base import BraceletReader
from terminal.readers.factory import create_reader
from terminal.settings import SYNC_INTERVAL_S
from terminal.sync.backoff import Backoff
from terminal.ui import i18n, theme
from terminal.ui.main_window import MainWindow
from terminal.ui.sound import SoundPlayer, create_player


@dataclass(frozen=True, slots=True)
class AppOptions:
    server: str | None = None
    enroll_code: str | None = None
    name: str | None = None
    reader: str = "simulated"
    reader_device: str | None = None
    sync_interval: float = SYNC_INTERVAL_S
    fullscreen: bool = False
    smoke_test: bool = False  # print what the first screen showed and exit (ui/smoke.py)


def create_window(data_dir: Path | str, options: AppOptions | None = None, *,
                  terminal: Terminal | None = None, reader: BraceletReader | None = None,
                  backoff: Backoff | None = None,
                  player: SoundPlayer | None = None) -> MainWindow:
    """Everything but the event loop (tests and the benchmark call this). ``player``: where
    the answer sounds go; tests and benchmarks leave it out and get silence."""
    options = options or AppOptions()
    terminal = terminal or Terminal(data_dir)
    _apply_language(terminal)
    if reader is None:
        extra = {"device": options.reader_device} if options.reader_device else {}
        reader = create_reader(options.reader, **extra)
    return MainWindow(terminal, reader, sync_interval=options.sync_interval,
                      backoff=backoff or Backoff(),
                      server=options.server, enroll_code=options.enroll_code,
                      name=options.name, player=player)


def _apply_language(terminal: Terminal) -> None:
    """This terminal's stored language (English until one is chosen on the login screen);
    nothing to do when the app already shows it."""
    app = QApplication.instance()
    language = i18n.stored_language(terminal)
    if isinstance(app, QApplication) and language != i18n.current():
        i18n.switch(app, language)


def main(data_dir: Path | str, options: AppOptions | None = None) -> int:
    options = options or AppOptions()
    logging.basicConfig(level=os.environ.get("POS_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Cafeteria POS")
    theme.apply(app)
    try:
        window = create_window(data_dir, options, player=create_player())
    except ValueError as exc:  # an unknown reader kind or option, in plain words
        sys.stderr.write(f"pos-terminal: {exc}\n")
        return 2
    if options.fullscreen:
        window.showFullScreen()
    else:
        window.show()
    window.start()
    if options.smoke_test:
        from terminal.ui import smoke
        smoke.arm(window, app)
    code = app.exec()
    window.shutdown()
    window.terminal.close()
    return int(code)
