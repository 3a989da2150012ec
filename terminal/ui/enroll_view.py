"""First start: join the school with the server URL and a one-time code.

Enrollment talks to the network, so it runs on a worker thread; the screen only shows that it
is working and, after, what went wrong in the core's words.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import QFormLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from terminal.core import Enrollment, Terminal
from terminal.ui import theme
from terminal.ui.workers import run_in_background


class EnrollView(QWidget):
    enrolled = Signal(object)  # Enrollment

    def __init__(self, terminal: Terminal, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.terminal = terminal
        self.busy = False
        outer = QVBoxLayout(self)
        outer.setContentsMargins(120, 30, 120, 30)
        self.title = QLabel()
        theme.set_role(self.title, "title")
        outer.addWidget(self.title)
        self.intro = QLabel()
        self.intro.setWordWrap(True)
        outer.addWidget(self.intro)
        self.form = form = QFormLayout()
        self.server = QLineEdit()
        self.server.setPlaceholderText("https://pos.school.example")
        # Addresses, codes and names are typed in Latin letters left to right, also in
        # an Arabic layout.
        self.server.setLayoutDirection(Qt.LayoutDirection.LeftToRight)
        self.code = QLineEdit()
        self.code.setLayoutDirection(Qt.LayoutDirection.LeftToRight)
        self.name = QLineEdit(f"Counter {socket.gethostname()[:20]}")
        self.labels = [QLabel(), QLabel(), QLabel()]
        form.addRow(self.labels[0], self.server)
        form.addRow(self.labels[1], self.code)
        form.addRow(self.labels[2], self.name)
        outer.addLayout(form)
        self.button = QPushButton()
        theme.set_role(self.button, "primary")
        self.button.clicked.connect(self.submit)
        outer.addWidget(self.button)
        self.message = QLabel()
        self.message.setWordWrap(True)
        theme.set_role(self.message, "error")
        outer.addWidget(self.message)
        outer.addStretch(1)
        for field in (self.server, self.code, self.name):
            field.returnPressed.connect(self.submit)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._message: Callable[[], str] = str  # redrawn in the new language on a switch
        self.retranslate()

    def retranslate(self) -> None:
        self.title.setText(self.tr("Set up this terminal"))
        self.intro.setText(self.tr("Enter the server address and the one-time enrollment "
                                   "code from the school's admin console."))
        self.code.setPlaceholderText(self.tr("enrollment code"))
        for label, text in zip(self.labels, (self.tr("Server"), self.tr("Code"),
                                             self.tr("Name")), strict=True):
            label.setText(text)
        self.button.setText(self.tr("Enroll  (Enter)"))
        self.message.setText(self._message())

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    def say(self, message: Callable[[], str]) -> None:
        self._message = message
        self.message.setText(message())

    def prefill(self, server: str | None, code: str | None) -> None:
        if server:
            self.server.setText(server)
        if code:
            self.code.setText(code)

    def submit(self) -> None:
        if self.busy:
            return
        server, code = self.server.text().strip(), self.code.text().strip()
        name = self.name.text().strip() or "Counter"
        if not server or not code:
            self.say(lambda: self.tr("Both the server address and the code are needed."))
            return
        self.busy = True
        self.button.setEnabled(False)
        self.say(lambda: self.tr("Enrolling\u2026 (this takes a few seconds)"))
        run_in_background(lambda: self.terminal.enroll(server, code, name), self._done,
                          terminal=self.terminal)

    def _done(self, result: Enrollment | None, error: BaseException | None) -> None:
        self.busy = False
        self.button.setEnabled(True)
        if error is not None:
            self.say(lambda: self.tr("Enrollment failed: %1").replace("%1", str(error)))
            return
        assert result is not None
        if not result.first_snapshot.completed:
            failure = str(result.first_snapshot.error)
            self.say(lambda: self.tr("Enrolled, but the first snapshot failed: %1. It will "
                                     "be retried.").replace("%1", failure))
        self.enrolled.emit(result)
