"""A real window for the X11 wedge test, run as its own process under Xvfb (platform xcb).

The pytest process already has an offscreen QApplication, hence a separate process. It shows
a line edit inside a parent widget (so ignored keys propagate, as in the terminal), prints
READY once the line edit has the keyboard focus, and on the line "dump" on stdin prints what
it saw as JSON and exits.
"""

from __future__ import annotations

import json
import sys
import threading

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication, QLineEdit, QVBoxLayout, QWidget

from terminal.readers.base import ReaderEvent, Tap
from terminal.readers.wedge import WedgeReader


class _Stdin(QObject):
    line = Signal(str)


def main() -> int:
    app = QApplication(sys.argv)
    window = QWidget()
    window.setWindowTitle("pos-wedge-test")
    layout = QVBoxLayout(window)
    field = QLineEdit()
    layout.addWidget(field)
    window.resize(400, 100)
    window.show()
    window.activateWindow()
    field.setFocus()

    taps: list[str] = []
    entered: list[str] = []
    field.returnPressed.connect(lambda: entered.append(field.text()))

    def sink(event: ReaderEvent) -> None:
        if isinstance(event, Tap):
            taps.append(event.uid)

    reader = WedgeReader()
    reader.start(sink)

    def announce_when_focused() -> None:
        if field.hasFocus():
            print("READY", flush=True)
        else:
            window.activateWindow()
            field.setFocus()
            QTimer.singleShot(50, announce_when_focused)

    stdin = _Stdin()

    def on_line(line: str) -> None:
        if line.strip() == "dump":
            print(json.dumps({"taps": taps, "text": field.text(), "entered": entered}), flush=True)
        elif line.strip() == "clear":
            field.clear()
            taps.clear()
            entered.clear()
            print("CLEARED", flush=True)
        elif line.strip() == "quit":
            reader.stop()
            app.quit()

    stdin.line.connect(on_line)  # queued: emitted from the reader thread below

    def read_stdin() -> None:
        for line in sys.stdin:
            stdin.line.emit(line)
        stdin.line.emit("quit")

    threading.Thread(target=read_stdin, daemon=True).start()
    QTimer.singleShot(0, announce_when_focused)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
