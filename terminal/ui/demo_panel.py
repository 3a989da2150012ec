"""The demo counter's bracelets: with the simulated reader, tap a student from the screen.

Shown only when the reader is simulated. It calls :meth:`SimulatedReader.tap`, the same path a
real reader's event takes, so the demo exercises the real tap handling (de-duplication, rules,
result). It also unplugs and replugs the simulated reader, to show the status bar reacting.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from shared.ids import mask_uid
from terminal.core import Terminal
from terminal.readers.simulated import SimulatedReader


class DemoPanel(QDialog):
    def __init__(self, terminal: Terminal, reader: SimulatedReader,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.terminal = terminal
        self.reader = reader
        self.setModal(False)
        self.resize(420, 520)
        layout = QVBoxLayout(self)
        self.intro = QLabel()
        layout.addWidget(self.intro)
        self.list = QListWidget()
        self.list.setStyleSheet("QListWidget::item { min-height: 36px; }")
        self.list.itemActivated.connect(self._tap_item)
        layout.addWidget(self.list, 1)
        row = QHBoxLayout()
        self.tap_button = QPushButton()
        self.tap_button.clicked.connect(lambda: self._tap_item(self.list.currentItem()))
        self.plugged = True
        self.plug_button = QPushButton()
        self.plug_button.clicked.connect(self._toggle_plug)
        row.addWidget(self.tap_button)
        row.addWidget(self.plug_button)
        layout.addLayout(row)
        self.retranslate()

    def retranslate(self) -> None:
        self.setWindowTitle(self.tr("Demo bracelets (simulated reader)"))
        self.intro.setText(self.tr("Double-click (or Enter) to tap a bracelet:"))
        self.tap_button.setText(self.tr("Tap"))
        self.plug_button.setText(self.tr("Unplug reader") if self.plugged
                                 else self.tr("Plug reader in"))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    def reload(self) -> None:
        self.list.clear()
        for uid, name, status in self.terminal.bracelets():
            text = f"{name}   {mask_uid(uid)}"
            if status != "active":
                text += "  (" + self.tr("blocked") + ")" if status == "blocked" else f"  ({status})"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, uid)
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)

    def _tap_item(self, item: QListWidgetItem | None) -> None:
        if item is not None:
            self.reader.tap(item.data(Qt.ItemDataRole.UserRole))

    def _toggle_plug(self) -> None:
        if self.plugged:
            self.reader.disconnect()
        else:
            self.reader.reconnect()
        self.plugged = not self.plugged
        self.retranslate()
