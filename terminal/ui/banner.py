"""Problems the cashier must not miss, as coloured bars above every screen.

The alerts themselves come from :meth:`Terminal.alerts` (a revoked device, a clock that went
back, sales the server rejected or found in conflict, offline caps nearly reached, the server
unreachable); this widget only draws them, red for problems and amber for warnings. A rejected
sale's bar has a "Seen" button, because it stays in history but should not shout forever.
Each bar's sentence is the alert in the cashier's language (terminal/ui/messages.py); the bars
are rebuilt on a language change.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from terminal.selling.alerts import Alert
from terminal.ui import messages, theme

MAX_BARS = 2
LABEL_MIN_WIDTH = 760


class Banner(QWidget):
    dismiss_review = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(1)
        self.alerts: list[Alert] = []
        self.setVisible(False)

    def retranslate(self) -> None:
        shown, self.alerts = self.alerts, []
        self.show_alerts(shown)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    def show_alerts(self, alerts: list[Alert]) -> None:
        if alerts == self.alerts:
            return
        self.alerts = list(alerts)
        while self._layout.count():
            item = self._layout.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        # At most two bars, most urgent first: the sale screen must keep fitting 1024x600
        # whatever goes wrong at once; the rest are counted on the last bar.
        shown = alerts[:MAX_BARS]
        for i, alert in enumerate(shown):
            more = len(alerts) - len(shown) if i == len(shown) - 1 else 0
            self._layout.addWidget(self._bar(alert, more))
        self.setVisible(bool(alerts))

    def texts(self) -> list[str]:
        return [messages.alert_text(alert) for alert in self.alerts]

    def _bar(self, alert: Alert, more: int = 0) -> QFrame:
        bar = QFrame()
        bar.setObjectName("bannerBar")
        problem = alert.level == "problem"
        background = theme.PROBLEM if problem else theme.WARNING
        foreground = "white" if problem else "black"
        bar.setStyleSheet(f"#bannerBar {{ background: {background}; }}"
                          f"#bannerBar QLabel {{ color: {foreground}; font-weight: bold;"
                          " font-size: 12pt; }")
        row = QHBoxLayout(bar)
        row.setContentsMargins(10, 3, 6, 3)
        suffix = " " + self.tr("(+%1 more)").replace("%1", str(more)) if more else ""
        label = QLabel(("\u26a0 " if problem else "") + messages.alert_text(alert) + suffix)
        label.setWordWrap(True)
        # A wrapping label's minimum height is taken at its minimum width, where it wraps into
        # many lines; that alone pushed the window past 600 px. The screen is 1024 wide.
        label.setMinimumWidth(LABEL_MIN_WIDTH)
        row.addWidget(label, 1)
        if alert.code == "sales_need_review":
            seen = QPushButton(self.tr("Seen"))
            seen.setMinimumHeight(32)
            seen.setStyleSheet("min-height: 30px;")
            seen.clicked.connect(self.dismiss_review.emit)
            row.addWidget(seen)
        return bar
