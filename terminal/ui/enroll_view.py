"""First start: join the school with the server URL and a one-time code.

Enrollment talks to the network, so it runs on a worker thread; the screen only shows that it
is working and, after, what went wrong in the core's words.
"""

from __future__ import annotations

import socket

from PySide6.QtCore import Qt, Signal
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
        title = QLabel("Set up this terminal")
        theme.set_role(title, "title")
        outer.addWidget(title)
        intro = QLabel("Enter the server address and the one-time enrollment code "
                       "from the school's admin console.")
        intro.setWordWrap(True)
        outer.addWidget(intro)
        form = QFormLayout()
        self.server = QLineEdit()
        self.server.setPlaceholderText("https://pos.school.example")
        self.code = QLineEdit()
        self.code.setPlaceholderText("enrollment code")
        self.name = QLineEdit(f"Counter {socket.gethostname()[:20]}")
        form.addRow("Server", self.server)
        form.addRow("Code", self.code)
        form.addRow("Name", self.name)
        outer.addLayout(form)
        self.button = QPushButton("Enroll  (Enter)")
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
            self.message.setText("Both the server address and the code are needed.")
            return
        self.busy = True
        self.button.setEnabled(False)
        self.message.setText("Enrolling\u2026 (this takes a few seconds)")
        run_in_background(lambda: self.terminal.enroll(server, code, name), self._done,
                          terminal=self.terminal)

    def _done(self, result: Enrollment | None, error: BaseException | None) -> None:
        self.busy = False
        self.button.setEnabled(True)
        if error is not None:
            self.message.setText(f"Enrollment failed: {error}")
            return
        assert result is not None
        if not result.first_snapshot.completed:
            self.message.setText("Enrolled, but the first snapshot failed: "
                                 f"{result.first_snapshot.error}. It will be retried.")
        self.enrolled.emit(result)
