"""Fixes of issue 12, each shown through the real window: '&' in product names, buttons and
hotkeys by the school's positions, same-name lookup, the history's selection, a voided sale
offered again, and the PIN lockout countdown."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from terminal.changes import Change
from terminal.pins import PinAttempts
from tests.ui.conftest import screenshot
from tests.ui.till import PRODUCTS, apply_products, open_till


def test_ampersand_in_a_product_name_is_shown(qtbot: QtBot, tmp_path: Path) -> None:
    till = open_till(qtbot, tmp_path)
    till.sale.tabs.setCurrentIndex(till.sale.categories.index("Meals"))
    button = till.sale.product_buttons["rice"]
    assert button.text().startswith("Rice && chicken\n")  # "&&" is how Qt draws one "&"
    # drawn as the school wrote it: the button is as wide as "Rice & chicken" needs
    assert "Rice & chicken" in button.text().replace("&&", "&")
    till.add("rice")
    cart = till.sale.cart
    assert cart.items() == [("rice", 1)]
    assert cart.data(cart.index(0, 0)) == "Rice & chicken"  # the cart shows plain text
    till.window.shutdown()


def _keys(till: object) -> dict[str, str]:
    """Product -> the number key shown on its button, for the current tab."""
    sale = till.sale  # type: ignore[attr-defined]
    out = {}
    for product in sale.category_products():
        text = sale.product_buttons[product.product_id].text()
        out[product.product_id] = text.split("[", 1)[1].split("]", 1)[0]
    return out


def test_buttons_and_hotkeys_follow_positions_and_new_products_go_last(
        qtbot: QtBot, tmp_path: Path) -> None:
    till = open_till(qtbot, tmp_path)
    sale = till.sale
    assert sale.categories[0] == "Drinks"
    assert _keys(till) == {"water": "1", "juice": "2", "laban": "3"}
    qtbot.keyClick(sale, Qt.Key.Key_2)
    assert sale.cart.items() == [("juice", 1)]
    sale.cart.clear()

    # The school swaps water and juice in the console: the next snapshot carries it.
    swapped = [dict(p) for p in PRODUCTS]
    by_id = {p["product_id"]: p for p in swapped}
    by_id["water"]["position"], by_id["juice"]["position"] = 2, 1
    apply_products(till.terminal, [by_id["water"], by_id["juice"]])
    till.window.redraw(Change.SNAPSHOT)
    assert [p.product_id for p in sale.category_products()] == ["juice", "water", "laban"]
    assert _keys(till) == {"juice": "1", "water": "2", "laban": "3"}
    qtbot.keyClick(sale, Qt.Key.Key_2)
    assert sale.cart.items() == [("water", 1)]
    sale.cart.clear()

    # A product added later gets the next position: nobody's key moves.
    tea = {"product_id": "tea", "name": "Mint tea", "price": 200, "category": "Drinks",
           "active": True, "position": 6}
    apply_products(till.terminal, [tea])
    till.window.redraw(Change.SNAPSHOT)
    assert _keys(till) == {"juice": "1", "water": "2", "laban": "3", "tea": "4"}
    till.window.shutdown()


def test_same_name_lookup_never_charges_an_unchosen_student(qtbot: QtBot,
                                                            tmp_path: Path) -> None:
    till = open_till(qtbot, tmp_path)
    window, sale = till.window, till.sale
    till.add("water", 2)
    qtbot.keyClick(sale, Qt.Key.Key_F3)
    dialog = window.lookup_dialog
    assert dialog is not None
    qtbot.keyClicks(dialog.query, "Sara K")
    assert dialog.results.count() == 2
    rows = [dialog.results.item(i).text() for i in range(2)]
    # told apart by grade, homeroom and the masked bracelet UID
    assert any("Grade 4" in r and "4A" in r and "04AA\u20260003" in r for r in rows)
    assert any("Grade 6" in r and "6C" in r and "04AA\u20260004" in r for r in rows)
    assert dialog.results.currentItem() is None  # nothing chosen for the cashier
    screenshot(dialog, "lookup-same-name")

    qtbot.keyClick(dialog.query, Qt.Key.Key_Return)  # Enter on an ambiguous list: nothing
    assert window.lookup_dialog is dialog and dialog.isVisible()
    assert "Several students match" in dialog.hint.text()
    assert till.terminal.history() == []

    # the cashier picks the Grade 6 one (Down twice), then Enter charges her
    grade6 = next(i for i in range(2) if "Grade 6" in dialog.results.item(i).text())
    for _ in range(grade6 + 1):
        qtbot.keyClick(dialog.query, Qt.Key.Key_Down)
    assert dialog.results.currentRow() == grade6
    painted = till.panel.paint_count
    qtbot.keyClick(dialog.query, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: till.panel.state == "approved"
                    and till.panel.paint_count > painted)
    sale_row = till.terminal.history(1)[0]
    assert sale_row.wallet_id == "w-sara6" and sale_row.credential_uid is None
    assert "Homeroom" in till.panel.who.text() and "6C" in till.panel.who.text()
    assert till.terminal.balance_estimate("w-sara4") == 4000  # the other Sara: untouched

    # exactly one match: Enter takes it without a choice
    till.add("water")
    qtbot.keyClick(sale, Qt.Key.Key_F3)
    dialog = window.lookup_dialog
    assert dialog is not None
    qtbot.keyClicks(dialog.query, "Omar")
    painted = till.panel.paint_count
    qtbot.keyClick(dialog.query, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: till.panel.paint_count > painted
                    and till.panel.outcome is not None)
    assert till.terminal.history(1)[0].wallet_id == "w-omar"
    window.shutdown()


def test_history_follows_the_newest_sale_and_refuses_a_second_void(qtbot: QtBot,
                                                                   tmp_path: Path) -> None:
    till = open_till(qtbot, tmp_path)
    window, sale = till.window, till.sale
    till.add("water")
    till.tap("sara4", "approved")
    qtbot.keyClick(sale, Qt.Key.Key_F4)
    history = window.history_view
    assert history.selected_ref() == till.terminal.history(1)[0].ref  # sale #1, the newest
    qtbot.keyClick(history.table, Qt.Key.Key_Escape)

    # a second sale; back in history, V must offer THAT one, not the one selected before
    till.add("juice")
    till.tap("sara6", "approved")
    newest = till.terminal.history(1)[0]
    qtbot.keyClick(sale, Qt.Key.Key_F4)
    assert history.selected_ref() == newest.ref
    qtbot.keyClick(history.table, Qt.Key.Key_V)
    box = history.confirm_box
    assert box is not None and f"#{newest.seq}" in box.text() and "Sara K." in box.text()
    qtbot.mouseClick(box.button(QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(r.kind == "void" for r in till.terminal.history(5)))
    assert history.selected_ref() == newest.ref  # still the sale just voided

    # V again on the voided sale: refused before any dialog, in plain words
    qtbot.keyClick(history.table, Qt.Key.Key_V)
    assert history.confirm_box is None
    assert "already been voided" in history.message.text()
    assert sum(r.kind == "void" for r in till.terminal.history(10)) == 1

    # a bracelet tapped while the history is open: the answer is shown, not hidden behind it
    sale.cart.clear()
    till.add("water")
    painted = till.panel.paint_count
    till.tap("omar")
    qtbot.waitUntil(lambda: window.current_view() is sale and till.panel.state == "approved"
                    and till.panel.paint_count > painted)

    # a redraw while the cashier has an older line selected keeps that line
    qtbot.keyClick(sale, Qt.Key.Key_F4)
    first = next(r for r in history.model.rows if r.seq == 1)
    history.select_ref(first.ref)
    window.redraw(Change.SALES)
    assert len(history.model.rows) == 4 and history.selected_ref() == first.ref
    window.shutdown()


def test_pin_lockout_counts_down_and_unlocks_at_zero(qtbot: QtBot, tmp_path: Path) -> None:
    till = open_till(qtbot, tmp_path, log_in=False)
    window = till.window
    till.terminal.pin_attempts = PinAttempts(free=1, base_s=3.0, max_s=3.0)
    login = window.login_view
    login.select("cash1")
    qtbot.keyClicks(login.pin, "1111")  # the snapshot's hash matches no PIN
    qtbot.keyClick(login.pin, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "Try again in 3 s" in login.message.text(), timeout=5000)
    qtbot.waitUntil(lambda: "Try again in 2 s" in login.message.text(), timeout=2500)
    qtbot.waitUntil(lambda: "Try again in 1 s" in login.message.text(), timeout=2500)
    # while it lasts, another try is not even sent to the PIN check
    qtbot.keyClicks(login.pin, "2222")
    qtbot.keyClick(login.pin, Qt.Key.Key_Return)
    assert not login.busy and login.pin.text() == ""
    qtbot.waitUntil(lambda: login.message.text() == "", timeout=2500)
    assert login.locked_cashier is None and login.lockout_left() == 0
    qtbot.keyClicks(login.pin, "3333")
    qtbot.keyClick(login.pin, Qt.Key.Key_Return)  # checked again: wrong, locked again
    qtbot.waitUntil(lambda: "Try again in" in login.message.text(), timeout=5000)
    window.shutdown()
