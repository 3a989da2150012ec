"""Find a student by name when the bracelet was forgotten.

The sale is then recorded with the wallet and no credential UID (the server and the admin
console can tell such sales apart). Typing searches the local snapshot, so it works offline.

Never the wrong student: each row shows grade, homeroom and the masked UID of the student's
bracelet beside the name, so two students of the same name are told apart; and Enter charges
only a row the cashier chose (with the arrow keys or a tap), unless the search found exactly
one student. On a list of several with none chosen, Enter does nothing but say so.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from shared.money import format_minor
from terminal.core import Terminal, WalletView
from terminal.ui.i18n import isolate


class LookupDialog(QDialog):
    chosen = Signal(str, str)  # wallet_id, display name

    def __init__(self, terminal: Terminal, total: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.terminal = terminal
        self.total = total
        # wide enough for "name · grade · homeroom · UID · balance" in Arabic too: a row cut
        # at its end would cut the balance
        self.resize(700, 440)
        layout = QVBoxLayout(self)
        currency = terminal.currency()
        self.prompt = QLabel()
        self.prompt.setWordWrap(True)
        layout.addWidget(self.prompt)
        self.query = QLineEdit()
        self.query.textChanged.connect(self.search)
        layout.addWidget(self.query)
        self.results = QListWidget()
        self.results.setStyleSheet("QListWidget::item { min-height: 40px; }")
        self.results.itemClicked.connect(self._picked)
        self.results.itemActivated.connect(self._activated)
        self.picked = False   # the cashier chose a row on this list (arrows or a tap)
        layout.addWidget(self.results, 1)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        layout.addWidget(self.hint)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.currency = currency
        self.query.returnPressed.connect(self.accept)
        self.retranslate()

    def retranslate(self) -> None:
        self.setWindowTitle(self.tr("Find student by name"))
        self.prompt.setText(self.tr("Charge %1 to the student (no bracelet). Type part of "
                                    "the name:").replace(
            "%1", isolate(format_minor(self.total, self.currency))))
        self.query.setPlaceholderText(self.tr("name"))
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText(
            self.tr("Charge (Enter)"))
        if self.results.count():
            self.search(self.query.text())

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    def search(self, text: str) -> None:
        self.results.clear()
        self.picked = False
        self.hint.setText("")
        for view in self.terminal.search_wallets(text):
            item = QListWidgetItem(self.row_text(view))
            item.setData(Qt.ItemDataRole.UserRole, (view.wallet_id, view.display_name))
            self.results.addItem(item)
        # No row is pre-selected: the first of two "Sara K." is not a choice the cashier made.
        self.results.setCurrentRow(-1)
        self.results.clearSelection()

    def row_text(self, view: WalletView) -> str:
        parts = [view.display_name]
        grade = getattr(view, "grade", None)
        homeroom = getattr(view, "homeroom", None)
        if grade:
            parts.append(grade)
        if homeroom:
            parts.append(self.tr("Homeroom %1").replace("%1", homeroom))
        masked = getattr(view, "masked_uids", None) or ()
        if masked:
            parts.append(", ".join(masked))
        parts.append(format_minor(view.balance_estimate, self.currency))
        # each part isolated: an Arabic homeroom must not run into the Latin UID next to it
        label = "   \u00b7   ".join(isolate(part) for part in parts)
        if view.status != "active":
            status = {"frozen": self.tr("frozen"), "closed": self.tr("closed")}.get(
                view.status, view.status)
            label += f"   ({status})"
        return label

    def _picked(self, _item: QListWidgetItem) -> None:
        self.picked = True
        self.hint.setText("")

    def _activated(self, item: QListWidgetItem) -> None:
        self.results.setCurrentItem(item)
        self.picked = True
        self.accept()

    def choice(self) -> QListWidgetItem | None:
        """The row Enter would charge: one the cashier chose, or the only one found."""
        if self.results.count() == 1:
            return self.results.item(0)
        if self.picked:
            return self.results.currentItem()
        return None

    def keyPressEvent(self, event: object) -> None:
        """Up/Down move through the results while the cursor stays in the name field."""
        key = event.key()  # type: ignore[attr-defined]
        if key in (Qt.Key.Key_Up, Qt.Key.Key_Down) and self.results.count():
            step = -1 if key == Qt.Key.Key_Up else 1
            current = self.results.currentRow()
            if current < 0:
                row = 0 if step > 0 else self.results.count() - 1
            else:
                row = max(0, min(self.results.count() - 1, current + step))
            self.results.setCurrentRow(row)
            self.picked = True
            self.hint.setText("")
            return
        super().keyPressEvent(event)  # type: ignore[arg-type]

    def accept(self) -> None:
        item = self.choice()
        if item is None:
            if self.results.count() > 1:
                self.hint.setText(self.tr("Several students match: choose one with \u2191/\u2193 "
                                          "or a tap, then press Enter."))
            return
        wallet_id, name = item.data(Qt.ItemDataRole.UserRole)
        super().accept()
        self.chosen.emit(wallet_id, name)
