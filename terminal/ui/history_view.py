"""History of this terminal's sales, and voiding one with a confirmation.

The confirmation is a non-blocking message box (``open()``, not ``exec()``): no nested event
loop, so sync reports and taps keep flowing while the cashier decides, and tests can click it.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from shared.money import format_minor
from terminal.core import Terminal
from terminal.ui import i18n, messages, theme
from terminal.ui.history_model import HistoryModel


class HistoryView(QWidget):
    back_requested = Signal()
    void_confirmed = Signal(str)  # ref

    def __init__(self, terminal: Terminal, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.terminal = terminal
        self.model = HistoryModel(terminal.currency(), self._name_of)
        self.confirm_box: QMessageBox | None = None
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 6, 8, 6)
        top = QHBoxLayout()
        self.title = QLabel()
        theme.set_role(self.title, "title")
        top.addWidget(self.title, 1)
        self.void_button = QPushButton()
        theme.set_role(self.void_button, "danger")
        self.void_button.clicked.connect(self.ask_void)
        self.back_button = QPushButton()
        self.back_button.clicked.connect(self.back_requested.emit)
        top.addWidget(self.void_button)
        top.addWidget(self.back_button)
        outer.addLayout(top)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(32)
        self.table.setWordWrap(False)
        hh = self.table.horizontalHeader()
        for col in range(6):
            hh.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.setStyleSheet("font-size: 12pt;")
        outer.addWidget(self.table, 1)
        self.message = QLabel()
        self.message.setWordWrap(True)
        outer.addWidget(self.message)
        for key, action in (("V", self.ask_void), ("Del", self.ask_void),
                            ("Esc", self.back_requested.emit), ("F4", self.back_requested.emit)):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(action)
        self._message: Callable[[], str] = str  # redrawn in the new language on a switch
        self.retranslate()

    def retranslate(self) -> None:
        self.title.setText(self.tr("Recent sales on this terminal"))
        self.void_button.setText(self.tr("Void sale (V)"))
        self.back_button.setText(self.tr("Back to sale (Esc)"))
        self.model.retranslate()
        self.message.setText(self._message())

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    def say(self, message: Callable[[], str]) -> None:
        self._message = message
        self.message.setText(message())

    def _name_of(self, wallet_id: str) -> str:
        view = self.terminal.wallet_view(wallet_id)
        return view.display_name if view else wallet_id

    def reload(self, *, newest: bool = False) -> None:
        """Re-read the history. ``newest``: select the newest line (the screen is being
        opened: a selection left from an earlier visit would make V void an older sale than
        the one the cashier just made). Otherwise a line the cashier selected during this
        visit stays selected by its reference, wherever new lines push it; with none, nothing
        is selected and V asks for a choice."""
        selected = None if newest else self.selected_ref()
        self.model.currency = self.terminal.currency()
        self.model.set_rows(self.terminal.history(100))
        self.table.clearSelection()
        self.table.setCurrentIndex(self.model.index(-1, -1))
        for i, row in enumerate(self.model.rows):
            if row.ref == selected:
                i18n.select_row(self.table, i)
                break
        else:
            if newest and self.model.rows:
                i18n.select_row(self.table, 0)

    def selected_ref(self) -> str | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        row = self.model.row_at(rows[0].row()) if rows else None
        return row.ref if row else None

    def select_ref(self, ref: str) -> None:
        for i, row in enumerate(self.model.rows):
            if row.ref == ref:
                i18n.select_row(self.table, i)

    def ask_void(self) -> None:
        ref = self.selected_ref()
        row = next((r for r in self.model.rows if r.ref == ref), None)
        if row is None:
            self.say(lambda: self.tr("Select a sale to void."))
            return
        if row.kind != "sale":
            self.say(lambda: self.tr("That line is a void; select the sale itself."))
            return
        refused = self.terminal.void_refusal(row.ref)
        if refused is not None:  # already voided, not accepted by the server...: no dialog
            self.say(lambda: messages.refusal_of(refused))
            return
        question = self.tr("Void sale #%1 of %2 for %3?\nThe money goes back to the student.")
        box = QMessageBox(QMessageBox.Icon.Question, self.tr("Void sale"),
                          question.replace("%1", str(row.seq)).replace(
                              "%2", i18n.isolate(self.model.name(row.wallet_id))).replace(
                              "%3", i18n.isolate(format_minor(  # kept on one line
                                  row.total, self.model.currency).replace(" ", "\u00a0"))),
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.finished.connect(lambda answer: self._answered(ref, answer))
        self.confirm_box = box
        box.open()

    def _answered(self, ref: str | None, answer: int) -> None:
        self.confirm_box = None
        self.window().activateWindow()  # keys go back to this screen, not to nowhere
        self.table.setFocus()
        if ref and answer == QMessageBox.StandardButton.Yes.value:
            self.void_confirmed.emit(ref)

    def show_message(self, text: str | Callable[[], str]) -> None:
        """``text``, or a function giving it in the language in force (redrawn on a switch)."""
        self.say(text if callable(text) else (lambda: text))
