"""The big answer after a tap, readable from two metres: a full-width band under the products.

Green APPROVED, red REFUSED, purple RESTRICTED (an item this student may not have: a colour of
its own, so the cashier takes the item back instead of sending the student to the office),
blue for a balance or a void, amber for a notice about the till itself (reader lost, till
locked). The verdict is at least 48 px high and the student's name and balance at least 28 px
(issue 12); the sale screen gives the band at least a third of the window.

Between sales it shows the waiting state ("Tap bracelet to pay 12.00 SAR") so the cashier and
the student both know the terminal is ready, or, when the terminal may not sell at all (the
school revoked it), why not and what to do, in the place every answer appears. The panel
notes when it was last painted, which the tap-to-screen benchmarks read.

Every text is built in :meth:`_render` with ``self.tr`` from what is on screen, so a language
switch redraws the same answer in the other language.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QPaintEvent
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QSizePolicy, QWidget

from shared.money import format_minor
from terminal.ui import messages, theme
from terminal.ui.counter import Outcome
from terminal.ui.i18n import isolate

COLOURS = {"approved": theme.APPROVED, "refused": theme.REFUSED,
           "restricted": theme.RESTRICTED, "info": theme.INFO, "voided": theme.INFO,
           "notice": theme.WARNING}
FOREGROUND = {"notice": "black"}

# Pixel sizes (not points): "readable from two metres" is about what reaches the eye.
VERDICT_PX = 60
WAITING_PX = 48
NAME_PX = 34
BALANCE_PX = 30
DETAIL_PX = 22
CLASS_PX = 22


class ResultPanel(QFrame):
    def __init__(self, currency: str = "SAR", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.currency = currency
        self.state = "idle"
        self.outcome: Outcome | None = None
        self.painted_at = 0.0
        self.paint_count = 0
        self.stopped: str | None = None   # why this terminal cannot sell at all; None: it can
        # A problem of the till itself (the reader is gone): (title, what to do), or None
        self.notice: tuple[str, str] | None = None
        self._total = 0
        self.setObjectName("resultPanel")
        self.setMinimumHeight(200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        layout = QGridLayout(self)
        layout.setContentsMargins(18, 8, 18, 8)
        layout.setHorizontalSpacing(24)
        layout.setVerticalSpacing(2)
        self.headline = QLabel()    # the verdict
        self.detail = QLabel()      # the reason, or what was paid
        self.name = QLabel()        # the student
        self.who = QLabel()         # grade and homeroom (two students may share a name)
        self.amounts = QLabel()     # the new balance
        for label in (self.detail, self.name, self.who):
            label.setWordWrap(True)
        for label in (self.headline, self.detail, self.name, self.who, self.amounts):
            # A long name or amount must never widen the window past 1024 px: the text is
            # wrapped or cut at the panel's edge instead.
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        start = Qt.AlignmentFlag.AlignLeading | Qt.AlignmentFlag.AlignVCenter
        for label in (self.headline, self.detail, self.name, self.who, self.amounts):
            label.setAlignment(start)
        layout.addWidget(self.headline, 0, 0)
        layout.addWidget(self.detail, 1, 0, 2, 1)
        layout.addWidget(self.name, 0, 1)
        layout.addWidget(self.who, 1, 1)
        layout.addWidget(self.amounts, 2, 1)
        layout.setColumnStretch(0, 11)
        layout.setColumnStretch(1, 9)
        layout.setRowStretch(0, 3)
        layout.setRowStretch(1, 1)
        layout.setRowStretch(2, 2)
        self.show_waiting(0)

    # ------------------------------------------------------------------ what is shown

    def money(self, amount: int) -> str:
        return isolate(format_minor(amount, self.currency))

    def set_stopped(self, message: str | None) -> None:
        """Show ``message`` instead of the waiting state until it is cleared with ``None``.
        A change replaces whatever answer is on screen at once: an "APPROVED" left standing
        after the terminal was stopped would say the opposite of the truth."""
        if message == self.stopped:
            return
        self.stopped = message
        self.show_waiting(self._total)

    def set_notice(self, title: str | None, detail: str = "") -> None:
        """Show a problem of the till (no reader) instead of the waiting state, in amber,
        until cleared with ``None``: the cashier looks here, not at the status bar."""
        notice = (title, detail) if title else None
        if notice == self.notice:
            return
        self.notice = notice
        if self.outcome is None:
            self.show_waiting(self._total)

    def show_waiting(self, total: int) -> None:
        """The cart's state when no answer is on screen."""
        self.outcome = None
        self._total = total
        if self.stopped is not None:
            self.state = "stopped"
        elif self.notice is not None:
            self.state = "notice"
        elif total > 0:
            self.state = "waiting"
        else:
            self.state = "idle"
        self._render()

    def show_outcome(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.state = outcome.kind
        self._render()

    def retranslate(self) -> None:
        self._render()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    # ------------------------------------------------------------------ drawing

    def _style(self, background: str, foreground: str, headline_px: int) -> None:
        self.setStyleSheet(
            f"#resultPanel {{ background: {background}; border-radius: 10px; }}"
            f"#resultPanel QLabel {{ color: {foreground}; background: transparent; }}")
        self.headline.setStyleSheet(f"font-size: {headline_px}px; font-weight: bold;")
        self.name.setStyleSheet(f"font-size: {NAME_PX}px; font-weight: bold;")
        self.amounts.setStyleSheet(f"font-size: {BALANCE_PX}px; font-weight: bold;")
        self.detail.setStyleSheet(f"font-size: {DETAIL_PX}px;")
        self.who.setStyleSheet(f"font-size: {CLASS_PX}px;")

    def headline_text(self, kind: str) -> str:
        return {"approved": self.tr("APPROVED"), "refused": self.tr("REFUSED"),
                "restricted": self.tr("RESTRICTED"), "info": self.tr("BALANCE"),
                "voided": self.tr("VOIDED"), "notice": self.tr("ATTENTION")}.get(kind, kind)

    def _render(self) -> None:
        if self.outcome is not None:
            self._render_outcome(self.outcome)
            return
        self.who.setText("")
        if self.state == "stopped":
            self._style(theme.REFUSED, "white", WAITING_PX)
            self.headline.setText(self.tr("SELLING STOPPED"))
            self.name.setText(self.tr("No payments on this terminal"))
            self.amounts.setText("")
            self.detail.setText(self.stopped or "")
        elif self.state == "notice" and self.notice is not None:
            self._style(theme.WARNING, "black", WAITING_PX)
            self.headline.setText(self.headline_text("notice"))
            self.name.setText(self.notice[0])
            self.amounts.setText(self.tr("To pay %1").replace("%1", self.money(self._total))
                                 if self._total else "")
            self.detail.setText(self.notice[1])
        elif self.state == "waiting":
            self._style(theme.WAITING, "white", WAITING_PX)
            self.headline.setText(self.tr("Tap bracelet"))
            self.name.setText(self.tr("to pay %1").replace("%1", self.money(self._total)))
            self.amounts.setText("")
            self.detail.setText(self.tr("Forgot the bracelet? Find the student by name (F3)"))
        else:
            self._style(theme.IDLE, "#37474f", WAITING_PX)
            self.headline.setText(self.tr("Add items"))
            self.name.setText(self.tr("then tap the bracelet"))
            self.amounts.setText("")
            self.detail.setText(self.tr("A tap with an empty cart shows the balance"))

    def _render_outcome(self, outcome: Outcome) -> None:
        self._style(COLOURS.get(outcome.kind, theme.INFO),
                    FOREGROUND.get(outcome.kind, "white"), VERDICT_PX)
        self.headline.setText(self.headline_text(outcome.kind))
        if outcome.kind == "notice":
            self.name.setText("")
        else:
            self.name.setText(outcome.name or self.tr("Unknown bracelet"))
        self.who.setText(self.class_line(outcome.grade, outcome.homeroom))
        if outcome.after is not None:
            self.amounts.setText(self.tr("Balance %1").replace("%1", self.money(outcome.after)))
        else:
            self.amounts.setText("")
        if outcome.kind == "approved":
            detail = self.tr("Paid %1").replace("%1", self.money(outcome.total or 0))
            if outcome.before is not None and outcome.before != outcome.after:
                detail += " \u00b7 " + self.tr("was %1").replace("%1",
                                                                  self.money(outcome.before))
        elif outcome.refusal is not None:
            detail = messages.refusal_of(outcome.refusal)
        else:
            detail = messages.till_text(outcome.code, outcome.message)
        if outcome.offline and outcome.kind in ("approved", "voided"):
            detail = (detail + " " if detail else "") + self.tr("(saved offline, will sync)")
        self.detail.setText(detail)

    def class_line(self, grade: str | None, homeroom: str | None) -> str:
        parts = []
        if grade:
            parts.append(isolate(grade))
        if homeroom:
            parts.append(self.tr("Homeroom %1").replace("%1", isolate(homeroom)))
        return " \u00b7 ".join(parts)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        self.painted_at = time.perf_counter()
        self.paint_count += 1
