"""The cart as a Qt table model (Vorta's way: tested without any widget).

It wraps :class:`terminal.selling.cart.Cart`, so the lines and total shown are the ones the
core will price again from the snapshot when the sale is recorded. A model gets no
LanguageChange event: the view that shows it calls :meth:`CartModel.retranslate`.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QCoreApplication,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)

from shared.money import format_minor
from terminal.selling.cart import Cart
from terminal.ui.messages import QT_TRANSLATE_NOOP

Index = QModelIndex | QPersistentModelIndex
COLUMNS = (QT_TRANSLATE_NOOP("CartModel", "Item"), QT_TRANSLATE_NOOP("CartModel", "Qty"),
           QT_TRANSLATE_NOOP("CartModel", "Amount"))


class CartModel(QAbstractTableModel):
    total_changed = Signal(int)

    def __init__(self, currency: str = "SAR", parent: Any = None) -> None:
        super().__init__(parent)
        self.currency = currency
        self.cart = Cart()

    # -- Qt model

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.cart.lines)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return QCoreApplication.translate("CartModel", COLUMNS[section])
        return None

    def retranslate(self) -> None:
        """Headers in the language now in force (called by the view on LanguageChange)."""
        self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, len(COLUMNS) - 1)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.cart.lines):
            return None
        line = self.cart.lines[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return line.name
            if col == 1:
                return str(line.quantity)
            return format_minor(line.amount, self.currency, with_code=False)
        if role == Qt.ItemDataRole.TextAlignmentRole and col > 0:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.UserRole:
            return line.product_id
        return None

    # -- what the cashier does

    @property
    def total(self) -> int:
        return self.cart.total

    def items(self) -> list[tuple[str, int]]:
        """What :meth:`Terminal.record_sale` takes."""
        return [(line.product_id, line.quantity) for line in self.cart.lines]

    def is_empty(self) -> bool:
        return self.cart.is_empty()

    def add(self, product_id: str, name: str, unit_price: int) -> int:
        """Add one; returns the row of the product's line."""
        before = len(self.cart.lines)
        self.cart.add(product_id, name, unit_price)
        row = self._row_of(product_id)
        if len(self.cart.lines) > before:
            self.beginInsertRows(QModelIndex(), row, row)
            self.endInsertRows()
        else:
            self._changed(row)
        self.total_changed.emit(self.total)
        return row

    def increment(self, row: int) -> None:
        self._set_quantity(row, +1)

    def decrement(self, row: int) -> None:
        """At one, a decrement removes the line."""
        self._set_quantity(row, -1)

    def remove(self, row: int) -> None:
        if 0 <= row < len(self.cart.lines):
            self.beginRemoveRows(QModelIndex(), row, row)
            self.cart.remove(self.cart.lines[row].product_id)
            self.endRemoveRows()
            self.total_changed.emit(self.total)

    def clear(self) -> None:
        if self.cart.lines:
            self.beginResetModel()
            self.cart.clear()
            self.endResetModel()
            self.total_changed.emit(self.total)

    def _set_quantity(self, row: int, delta: int) -> None:
        if not 0 <= row < len(self.cart.lines):
            return
        line = self.cart.lines[row]
        quantity = line.quantity + delta
        if quantity <= 0:
            self.remove(row)
            return
        self.cart.set_quantity(line.product_id, quantity)
        self._changed(row)
        self.total_changed.emit(self.total)

    def _row_of(self, product_id: str) -> int:
        return next(i for i, line in enumerate(self.cart.lines) if line.product_id == product_id)

    def _changed(self, row: int) -> None:
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
