"""The big answer after a tap: green APPROVED or red REFUSED, readable from a step away.

Between sales it shows the waiting state ("Tap bracelet to pay 12.00 SAR") so the cashier and
the student both know the terminal is ready, or, when the terminal may not sell at all (the
school revoked it), why not and what to do, in the place every answer appears. The panel
notes when it was last painted, which the tap-to-screen benchmark reads.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QPaintEvent
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QVBoxLayout, QWidget

from shared.money import format_minor
from terminal.ui import theme
from terminal.ui.counter import Outcome

HEADLINES = {"approved": "APPROVED", "refused": "REFUSED", "info": "BALANCE",
             "voided": "VOIDED"}
COLOURS = {"approved": theme.APPROVED, "refused": theme.REFUSED, "info": theme.INFO,
           "voided": theme.INFO}


class ResultPanel(QFrame):
    def __init__(self, currency: str = "SAR", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.currency = currency
        self.state = "idle"
        self.outcome: Outcome | None = None
        self.painted_at = 0.0
        self.paint_count = 0
        self.stopped: str | None = None   # why this terminal cannot sell at all; None: it can
        self._total = 0
        self.setObjectName("resultPanel")
        self.setMinimumHeight(150)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.setSpacing(2)
        self.headline = QLabel()
        self.headline.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.name = QLabel()
        self.name.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.amounts = QLabel()
        self.amounts.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail = QLabel()
        self.detail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail.setWordWrap(True)
        for label in (self.headline, self.name, self.amounts, self.detail):
            # A long name or amount must never widen the window past 1024 px: the text is
            # cut at the panel's edge instead (names are short; amounts fit at this size).
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            layout.addWidget(label)
        self.show_waiting(0)

    def _style(self, background: str, foreground: str, headline_pt: int) -> None:
        self.setStyleSheet(
            f"#resultPanel {{ background: {background}; border-radius: 10px; }}"
            f"#resultPanel QLabel {{ color: {foreground}; background: transparent; }}")
        self.headline.setStyleSheet(f"font-size: {headline_pt}pt; font-weight: bold;")
        self.name.setStyleSheet("font-size: 17pt; font-weight: bold;")

    def money(self, amount: int) -> str:
        return format_minor(amount, self.currency)

    def set_stopped(self, message: str | None) -> None:
        """Show ``message`` instead of the waiting state until it is cleared with ``None``.
        A change replaces whatever answer is on screen at once: an "APPROVED" left standing
        after the terminal was stopped would say the opposite of the truth."""
        if message == self.stopped:
            return
        self.stopped = message
        self.show_waiting(self._total)

    def show_waiting(self, total: int) -> None:
        """The cart's state when no answer is on screen."""
        self.outcome = None
        self._total = total
        self.detail.setVisible(True)
        if self.stopped is not None:
            self.state = "stopped"
            self._style(theme.REFUSED, "white", 24)
            self.headline.setText("SELLING STOPPED")
            self.name.setText("No payments on this terminal")
            self.amounts.setText("")
            self.detail.setText(self.stopped)
        elif total > 0:
            self.state = "waiting"
            self._style(theme.WAITING, "white", 24)
            self.headline.setText("Tap bracelet")
            self.name.setText(f"to pay {self.money(total)}")
            self.amounts.setText("")
            self.detail.setText("Forgot the bracelet? Find the student by name (F3)")
        else:
            self.state = "idle"
            self._style(theme.IDLE, "#37474f", 20)
            self.headline.setText("Add items")
            self.name.setText("then tap the bracelet")
            self.amounts.setText("")
            self.detail.setText("A tap with an empty cart shows the balance")

    def show_outcome(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.state = outcome.kind
        self._style(COLOURS[outcome.kind], "white", 28)
        # The amount is not in the headline: "APPROVED 125.50 SAR" at this size does not fit
        # the panel at 1024x600 (seen in the screenshots), so it goes on the detail line.
        self.headline.setText(HEADLINES[outcome.kind])
        self.name.setText(outcome.name or "Unknown bracelet")
        if outcome.before is not None and outcome.after is not None \
                and outcome.before != outcome.after:
            self.amounts.setText(f"Balance {self.money(outcome.before)} \u2192 "
                                 f"{self.money(outcome.after)}")
        elif outcome.before is not None:
            self.amounts.setText(f"Balance {self.money(outcome.before)}")
        else:
            self.amounts.setText("")
        if outcome.kind == "approved":
            detail = f"Paid {self.money(outcome.total)}" if outcome.total is not None else ""
        else:
            detail = outcome.message
        if outcome.offline and outcome.kind in ("approved", "voided"):
            detail = (detail + " " if detail else "") + "(saved offline, will sync)"
        self.detail.setText(detail)
        self.detail.setVisible(bool(detail))

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        self.painted_at = time.perf_counter()
        self.paint_count += 1
