"""Find a student by name when the bracelet was forgotten.

The sale is then recorded with the wallet and no credential UID (the server and the admin
console can tell such sales apart). Typing searches the local snapshot, so it works offline.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
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
from terminal.core import Terminal


class LookupDialog(QDialog):
    chosen = Signal(str, str)  # wallet_id, display name

    def __init__(self, terminal: Terminal, total: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.terminal = terminal
        self.setWindowTitle("Find student by name")
        self.resize(560, 440)
        layout = QVBoxLayout(self)
        currency = terminal.currency()
        layout.addWidget(QLabel(f"Charge {format_minor(total, currency)} to the student "
                                "(no bracelet). Type part of the name:"))
        self.query = QLineEdit()
        self.query.setPlaceholderText("name")
        self.query.textChanged.connect(self.search)
        layout.addWidget(self.query)
        self.results = QListWidget()
        self.results.setStyleSheet("QListWidget::item { min-height: 40px; }")
        self.results.itemActivated.connect(lambda _item: self.accept())
        layout.addWidget(self.results, 1)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Charge (Enter)")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.currency = currency
        self.query.returnPressed.connect(self.accept)

    def search(self, text: str) -> None:
        self.results.clear()
        for view in self.terminal.search_wallets(text):
            balance = format_minor(view.balance_estimate, self.currency)
            label = f"{view.display_name}   \u2014   {balance}"
            if view.status != "active":
                label += f"   ({view.status})"
            item = QListWidgetItem(label)
            item.setData(Qt.ItemDataRole.UserRole, (view.wallet_id, view.display_name))
            self.results.addItem(item)
        if self.results.count():
            self.results.setCurrentRow(0)

    def keyPressEvent(self, event: object) -> None:
        """Up/Down move through the results while the cursor stays in the name field."""
        key = event.key()  # type: ignore[attr-defined]
        if key in (Qt.Key.Key_Up, Qt.Key.Key_Down) and self.results.count():
            step = -1 if key == Qt.Key.Key_Up else 1
            row = max(0, min(self.results.count() - 1, self.results.currentRow() + step))
            self.results.setCurrentRow(row)
            return
        super().keyPressEvent(event)  # type: ignore[arg-type]

    def accept(self) -> None:
        item = self.results.currentItem()
        if item is None:
            return
        wallet_id, name = item.data(Qt.ItemDataRole.UserRole)
        super().accept()
        self.chosen.emit(wallet_id, name)
