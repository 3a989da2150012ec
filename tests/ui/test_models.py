"""Qt table models tested without any widget (Vorta's way)."""

from __future__ import annotations

import json

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QColor

from terminal.store.outbox import OutboxRow
from terminal.ui.cart_model import CartModel
from terminal.ui.history_model import HistoryModel, sync_status

DISPLAY = Qt.ItemDataRole.DisplayRole


def test_cart_model_adds_counts_and_totals() -> None:
    model = CartModel("SAR")
    totals: list[int] = []
    model.total_changed.connect(totals.append)
    inserted: list[int] = []
    model.rowsInserted.connect(lambda _p, first, _last: inserted.append(first))
    assert model.add("wrap", "Chicken wrap", 1200) == 0
    assert model.add("water", "Water", 150) == 1
    assert model.add("wrap", "Chicken wrap", 1200) == 0   # same product: quantity, not a row
    assert inserted == [0, 1]
    assert model.rowCount() == 2 and model.columnCount() == 3
    assert model.data(model.index(0, 0), DISPLAY) == "Chicken wrap"
    assert model.data(model.index(0, 1), DISPLAY) == "2"
    assert model.data(model.index(0, 2), DISPLAY) == "24.00"
    assert model.total == 2550 and totals[-1] == 2550
    assert model.items() == [("wrap", 2), ("water", 1)]
    assert model.headerData(2, Qt.Orientation.Horizontal) == "Amount"
    assert model.rowCount(model.index(0, 0)) == 0  # a table, not a tree


def test_cart_model_plus_minus_remove_clear() -> None:
    model = CartModel("SAR")
    model.add("wrap", "Chicken wrap", 1200)
    model.add("water", "Water", 150)
    changed: list[int] = []
    model.dataChanged.connect(lambda top, _bottom: changed.append(top.row()))
    model.increment(1)
    assert model.items() == [("wrap", 1), ("water", 2)] and changed == [1]
    model.decrement(1)
    model.decrement(0)   # at one, minus removes the line
    assert model.items() == [("water", 1)]
    model.decrement(5)   # out of range: nothing happens
    model.increment(-1)
    assert model.items() == [("water", 1)]
    model.add("juice", "Juice", 300)
    model.remove(0)
    assert model.items() == [("juice", 1)] and model.total == 300
    model.clear()
    assert model.is_empty() and model.total == 0 and model.rowCount() == 0
    assert model.data(QModelIndex(), DISPLAY) is None


def row(seq: int, *, kind: str = "sale", outcome: str | None = None, voids: str | None = None,
        flags: list[str] | None = None, uid: str | None = "04AABBCCDDEEFF",
        detail: str | None = None, total: int = 1200) -> OutboxRow:
    return OutboxRow(
        seq=seq, ref=f"ref{seq}", kind=kind, voids=voids,
        created_at="2026-11-22T12:00:05+03:00", school_day="2026-11-22", cashier_id="c",
        wallet_id="w1", credential_uid=uid,
        lines_json=json.dumps([{"product_id": "wrap", "name": "Chicken wrap", "quantity": 1,
                                "unit_price": total}]),
        total=total, offline=False, last_status=outcome, outcome=outcome,
        flags_json=json.dumps(flags or []), code=None, detail=detail, balance_after=None,
        result_at=None, applied_epoch=None, acked=outcome is not None)


def test_history_model_words_for_sync_state_and_voids() -> None:
    names = {"w1": "Sara K."}
    model = HistoryModel("SAR", names.__getitem__)
    rows = [row(4, kind="void", voids="ref1"), row(3, outcome="rejected", detail="bad price"),
            row(2, outcome="applied", flags=["overdraft"], uid=None), row(1, outcome="applied")]
    model.set_rows(rows)
    assert model.rowCount() == 4 and model.columnCount() == 6
    texts = [[model.data(model.index(r, c), DISPLAY) for c in range(6)] for r in range(4)]
    assert texts[0][3] == "VOID of #1: 1\u00d7 Chicken wrap" and texts[0][4] == "-12.00"
    assert texts[0][5] == "waiting to sync"
    assert texts[1][5] == "REJECTED: bad price"
    assert texts[2][2] == "Sara K. (by name)" and texts[2][5] == "synced (overdraft)"
    assert texts[3][3].startswith("(voided)") and texts[3][5] == "synced"
    assert model.data(model.index(1, 0), Qt.ItemDataRole.ForegroundRole) == QColor("#b71c1c")
    assert model.data(model.index(3, 0), Qt.ItemDataRole.UserRole) == "ref1"
    # a void the server refused does not mark its sale as voided
    model.set_rows([row(2, kind="void", voids="ref1", outcome="rejected"),
                    row(1, outcome="applied")])
    assert not model.text(model.rows[1], 3).startswith("(voided)")
    assert sync_status(row(9, outcome="conflict")) == "CONFLICT: on the server"
