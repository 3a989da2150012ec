"""This terminal's recent sales and voids with their sync status, as a Qt table model.

The status words translate the outbox's own fields (``acked``, ``outcome``, flags) for a
cashier; which sale may be voided is still the core's decision when the cashier tries. They
are translated when asked for; the view calls :meth:`HistoryModel.retranslate` on a language
change, since a model gets no LanguageChange event of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QCoreApplication,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QColor

from shared.money import format_minor
from terminal.store.outbox import OutboxRow
from terminal.ui.messages import QT_TRANSLATE_NOOP

Index = QModelIndex | QPersistentModelIndex
COLUMNS = ("#", QT_TRANSLATE_NOOP("HistoryModel", "Time"),
           QT_TRANSLATE_NOOP("HistoryModel", "Student"),
           QT_TRANSLATE_NOOP("HistoryModel", "Items"),
           QT_TRANSLATE_NOOP("HistoryModel", "Amount"),
           QT_TRANSLATE_NOOP("HistoryModel", "Sync"))


def _tr(text: str) -> str:
    return QCoreApplication.translate("HistoryModel", text)


def sync_status(row: OutboxRow) -> str:
    """Plain words for where a sale is on its way to the server. The server's own detail
    (English, from its reject reasons) is shown as it came."""
    translate = QCoreApplication.translate
    if row.outcome is None:
        return translate("HistoryModel", "waiting to sync")
    if row.outcome == "applied":
        if "overdraft" in row.flags:
            return translate("HistoryModel", "synced (overdraft)")
        return translate("HistoryModel", "synced")
    if row.outcome == "rejected":
        why = row.detail or row.code or translate("HistoryModel", "by the server")
        return translate("HistoryModel", "REJECTED: %1").replace("%1", why)
    if row.outcome == "conflict":
        why = row.detail or row.code or translate("HistoryModel", "on the server")
        return translate("HistoryModel", "CONFLICT: %1").replace("%1", why)
    return row.outcome


def _time(created_at: str) -> str:
    try:
        # School time, as the status bar's clock shows it: a sale's created_at carries the
        # school's offset at the moment of the sale (record_sale), so it is shown as stored,
        # never moved into the machine's own zone.
        return datetime.fromisoformat(created_at).strftime("%H:%M:%S")
    except ValueError:
        return created_at


class HistoryModel(QAbstractTableModel):
    def __init__(self, currency: str = "SAR",
                 name_of: Callable[[str], str] | None = None, parent: Any = None) -> None:
        super().__init__(parent)
        self.currency = currency
        self.rows: list[OutboxRow] = []
        self.voided: set[str] = set()
        self._name_of = name_of or (lambda wallet_id: wallet_id)
        self._names: dict[str, str] = {}

    def set_rows(self, rows: list[OutboxRow]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.voided = {r.voids for r in rows if r.kind == "void" and r.voids
                       and r.outcome not in ("rejected", "conflict")}
        self.endResetModel()

    def row_at(self, index: int) -> OutboxRow | None:
        return self.rows[index] if 0 <= index < len(self.rows) else None

    def name(self, wallet_id: str) -> str:
        if wallet_id not in self._names:
            self._names[wallet_id] = self._name_of(wallet_id)
        return self._names[wallet_id]

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return _tr(COLUMNS[section])
        return None

    def retranslate(self) -> None:
        """Headers and status words in the language now in force."""
        self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, len(COLUMNS) - 1)
        if self.rows:
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(len(self.rows) - 1, len(COLUMNS) - 1))

    def text(self, row: OutboxRow, column: int) -> str:
        if column == 0:
            return str(row.seq)
        if column == 1:
            return _time(row.created_at)
        if column == 2:
            if row.credential_uid:
                return self.name(row.wallet_id)
            return QCoreApplication.translate("HistoryModel", "%1 (by name)").replace(
                "%1", self.name(row.wallet_id))
        if column == 3:
            comma = QCoreApplication.translate("HistoryModel", ", ")  # the language's own
            items = comma.join(f"{line['quantity']}\u00d7 {line['name']}" for line in row.lines)
            if row.kind == "void":
                void_of = QCoreApplication.translate("HistoryModel", "VOID of #%1: %2")
                return void_of.replace("%1", self._seq_of(row.voids)).replace("%2", items)
            if row.ref in self.voided:
                voided = QCoreApplication.translate("HistoryModel", "(voided) %1")
                return voided.replace("%1", items)
            return items
        if column == 4:
            sign = "-" if row.kind == "void" else ""
            return sign + format_minor(row.total, self.currency, with_code=False)
        return sync_status(row)

    def _seq_of(self, ref: str | None) -> str:
        return next((str(r.seq) for r in self.rows if r.ref == ref), "?")

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row = self.row_at(index.row()) if index.isValid() else None
        if row is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.text(row, index.column())
        if role == Qt.ItemDataRole.ForegroundRole:
            if row.outcome in ("rejected", "conflict"):
                return QColor("#b71c1c")
            if row.kind == "void" or row.ref in self.voided:
                return QColor("#757575")
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() in (0, 4):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.UserRole:
            return row.ref
        return None
