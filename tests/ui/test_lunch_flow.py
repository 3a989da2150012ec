"""A whole lunch service through the real app: real core, real server in-process, simulated
reader tapped from another thread (as hardware would), offscreen at 1024x600.

Deterministic: the demo data comes from the fixed seed (``sync_server.demo.DEMO_SEED``), and
the test keeps its own account of what each wallet was charged; at the end every wallet of
the school must hold exactly its opening balance minus that, as the server says, so a charge
to the wrong student (another "Sara K.") fails the test instead of passing it."""

from __future__ import annotations

import threading
from contextlib import suppress
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from pytestqt.exceptions import TimeoutError as WaitTimeout
from pytestqt.qtbot import QtBot

from shared.ids import mask_uid
from shared.money import format_minor
from sync_server.demo import DEMO_SEED
from terminal.readers.simulated import SimulatedReader
from terminal.store import snapshot
from terminal.ui.main_window import MainWindow
from tests.ui.conftest import SIZE, open_app, plain, screenshot


def tap(reader: SimulatedReader, uid: str) -> None:
    """Tap from a non-GUI thread, like a reader's worker does."""
    thread = threading.Thread(target=reader.tap, args=(uid,))
    thread.start()
    thread.join()


def add(window: MainWindow, qtbot: QtBot, product_id: str, times: int = 1) -> None:
    button = window.sale_view.product_buttons[product_id]
    for _ in range(times):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def wait_result(window: MainWindow, qtbot: QtBot, kind: str, before: int) -> None:
    panel = window.sale_view.result
    qtbot.waitUntil(lambda: panel.outcome is not None and panel.paint_count > before
                    and panel.state == kind, timeout=5000)


def test_lunch_flow(qtbot: QtBot, live_server: Any, tmp_path: Path) -> None:
    assert live_server.demo["seed"] == DEMO_SEED
    school = live_server.demo["schools"][0]
    products = {p["name"]: p for p in school["products"]}
    wallets = [w for w in school["wallets"] if w["status"] == "active" and w["daily_limit"] is None
               and not any(w["restrictions"].values())]
    wallets.sort(key=lambda w: w["balance"])
    poor = wallets[0]            # refused for balance
    rich = wallets[-4:]          # plenty for everything else
    cashier = school["cashiers"][0]
    water, wrap = products["Water 330ml"], products["Chicken wrap"]
    rice = products["Rice & chicken"]
    charged: dict[str, int] = {}  # wallet_id -> what this test expects the server to debit

    def expect(who: dict[str, Any], amount: int) -> None:
        charged[who["wallet_id"]] = charged.get(who["wallet_id"], 0) + amount

    reader = SimulatedReader()
    window, terminal = open_app(qtbot, tmp_path / "term", live_server.url,
                                school["enrollment_code"], "Counter 1", reader)
    assert window.minimumSizeHint().width() <= SIZE[0]
    assert (window.width(), window.height()) == SIZE
    screenshot(window, "enroll")
    window.start()  # not enrolled: enrolls by itself with the given code

    # -- enrollment, then login by PIN (a wrong one first)
    qtbot.waitUntil(lambda: window.current_view() is window.login_view, timeout=20000)
    # The reader reports its state from its own thread, through the GUI thread's inbox.
    qtbot.waitUntil(lambda: window.status_bar.reader_connected, timeout=5000)
    assert "Reader (simulated) connected" in plain(window.status_bar.reader.text())
    login = window.login_view
    login.select(cashier["cashier_id"])
    qtbot.keyClicks(login.pin, "999999")
    qtbot.keyClick(login.pin, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "Wrong PIN" in login.message.text(), timeout=5000)
    assert window.current_view() is login
    screenshot(window, "login")
    qtbot.keyClicks(login.pin, cashier["pin"])
    qtbot.keyClick(login.pin, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.current_view() is window.sale_view, timeout=5000)
    sale = window.sale_view
    assert plain(window.status_bar.cashier.text()).endswith(cashier["name"])
    assert len(sale.product_buttons) == len(school["products"])

    # -- sale 1: two wraps and a water by bracelet
    add(window, qtbot, wrap["product_id"], 2)
    add(window, qtbot, water["product_id"])
    total1 = 2 * wrap["price"] + water["price"]
    assert sale.cart.total == total1
    assert sale.result.state == "waiting" and "Tap bracelet" in sale.result.headline.text()
    assert (window.width(), window.height()) == SIZE
    screenshot(window, "sale")
    painted = sale.result.paint_count
    tap(reader, rich[0]["credential_uid"])
    wait_result(window, qtbot, "approved", painted)
    result = sale.result
    expect(rich[0], total1)
    assert plain(result.name.text()) == rich[0]["display_name"]
    assert format_minor(rich[0]["balance"], "SAR") in plain(result.detail.text())  # "was ..."
    assert format_minor(rich[0]["balance"] - total1, "SAR") in plain(result.amounts.text())
    who_line = plain(result.who.text())
    assert rich[0]["grade"] in who_line and rich[0]["homeroom"] in who_line
    assert sale.cart.is_empty()
    assert (window.width(), window.height()) == SIZE
    screenshot(window, "approved")

    # -- the same bracelet read again at once, with the next order on the counter: ignored
    add(window, qtbot, water["product_id"])
    tap(reader, rich[0]["credential_uid"])
    qtbot.wait(200)
    assert window.counter.ignored_repeats == 1
    assert sale.cart.total == water["price"]  # nothing charged
    # ...while the next student is served immediately
    painted = sale.result.paint_count
    tap(reader, rich[1]["credential_uid"])
    wait_result(window, qtbot, "approved", painted)
    expect(rich[1], water["price"])
    assert plain(result.name.text()) == rich[1]["display_name"]

    # -- refused for balance: the reason in plain words, the cart kept
    count = poor["balance"] // rice["price"] + 1
    add(window, qtbot, rice["product_id"], count)
    if sale.cart.total > 5000:  # the school's per-sale cap would answer first
        sale.cart.clear()
        add(window, qtbot, water["product_id"], poor["balance"] // water["price"] + 1)
    painted = sale.result.paint_count
    tap(reader, poor["credential_uid"])
    wait_result(window, qtbot, "refused", painted)
    assert result.headline.text() == "REFUSED"
    assert plain(result.detail.text()).startswith("Not enough balance")
    assert plain(result.name.text()) == poor["display_name"]
    assert not sale.cart.is_empty()
    screenshot(window, "refused")
    qtbot.keyClick(sale, Qt.Key.Key_Escape)  # clear the cart
    assert sale.cart.is_empty()

    # -- manual lookup by name (forgotten bracelet): no credential UID recorded
    add(window, qtbot, water["product_id"], 2)
    qtbot.keyClick(sale, Qt.Key.Key_F3)
    dialog = window.lookup_dialog
    assert dialog is not None
    who = rich[2]
    qtbot.keyClicks(dialog.query, who["display_name"])
    assert dialog.results.count() >= 1
    screenshot(dialog, "lookup")
    # Several students may share the name: the cashier picks the row with this student's
    # bracelet (its masked UID); Enter alone charges nobody while the list is ambiguous.
    row = next(i for i in range(dialog.results.count())
               if mask_uid(who["credential_uid"]) in plain(dialog.results.item(i).text()))
    if dialog.results.count() > 1:
        qtbot.keyClick(dialog.query, Qt.Key.Key_Return)
        assert window.lookup_dialog is dialog and len(terminal.history(10)) == 3
        for _ in range(row + 1):
            qtbot.keyClick(dialog.query, Qt.Key.Key_Down)
    painted = sale.result.paint_count
    qtbot.keyClick(dialog.query, Qt.Key.Key_Return)
    wait_result(window, qtbot, "approved", painted)
    expect(who, 2 * water["price"])
    by_hand = terminal.history(1)[0]
    assert by_hand.credential_uid is None
    assert by_hand.wallet_id == who["wallet_id"]
    assert by_hand.total == 2 * water["price"]

    # -- void of the first sale, with confirmation
    qtbot.keyClick(sale, Qt.Key.Key_F4)
    assert window.current_view() is window.history_view
    history = window.history_view
    first = next(r for r in history.model.rows if r.seq == 1)
    history.select_ref(first.ref)
    qtbot.keyClick(history.table, Qt.Key.Key_V)
    box = history.confirm_box
    assert box is not None
    qtbot.mouseClick(box.button(QMessageBox.StandardButton.No), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: history.confirm_box is None)
    assert not any(r.kind == "void" for r in terminal.history(10))
    qtbot.keyClick(history.table, Qt.Key.Key_V)
    box = history.confirm_box
    assert box is not None
    qtbot.mouseClick(box.button(QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(r.kind == "void" for r in terminal.history(10)))
    expect(rich[0], -total1)
    qtbot.waitUntil(lambda: len(history.model.rows) == 4)  # redrawn on the core's change
    texts = [history.model.text(r, 3) for r in history.model.rows]
    assert any(t.startswith("VOID of #1") for t in texts)
    assert any(t.startswith("(voided)") for t in texts)
    # the push results reach the open history through the core's changes, no reload by hand
    qtbot.waitUntil(lambda: all(r.outcome == "applied" for r in history.model.rows),
                    timeout=10000)
    screenshot(window, "history")
    qtbot.keyClick(history.table, Qt.Key.Key_Escape)
    assert window.current_view() is sale

    # -- the network goes: sales go on, the banner says so
    qtbot.waitUntil(lambda: terminal.status()["queued"] == 0, timeout=10000)
    live_server.stop()
    window.sync_now()
    qtbot.waitUntil(lambda: window.status_bar.online is False, timeout=10000)
    qtbot.waitUntil(lambda: any("Offline" in t for t in window.banner.texts()), timeout=5000)
    offline_buyer = rich[3]
    for _ in range(2):
        add(window, qtbot, water["product_id"])
        painted = sale.result.paint_count
        tap(reader, offline_buyer["credential_uid"])
        wait_result(window, qtbot, "approved", painted)
        expect(offline_buyer, water["price"])
        qtbot.wait(1100)  # same bracelet again: after the de-duplication window
    assert "saved offline" in plain(result.detail.text())
    qtbot.waitUntil(lambda: plain(window.status_bar.queue.text()).startswith("To sync: 2"))
    assert (window.width(), window.height()) == SIZE
    screenshot(window, "offline")

    # -- back online: the queue drains and balances come back from the server
    live_server.start()
    window.sync_now()
    qtbot.waitUntil(lambda: terminal.status()["queued"] == 0 and window.status_bar.online,
                    timeout=20000)
    qtbot.waitUntil(lambda: not window.banner.texts(), timeout=5000)
    assert plain(window.status_bar.queue.text()) == "All synced"

    def server_balances_in() -> bool:
        """The pull after the push may still be running: balances only move towards what
        the server says, so wait for it, then check every wallet below."""
        for w in school["wallets"]:
            got = snapshot.get_wallet(terminal.db, w["wallet_id"])
            if got is None or got.balance != w["balance"] - charged.get(w["wallet_id"], 0):
                return False
        return True

    with suppress(WaitTimeout):
        qtbot.waitUntil(server_balances_in, timeout=10000)
    row = snapshot.get_wallet(terminal.db, offline_buyer["wallet_id"])
    assert row is not None
    assert row.balance == offline_buyer["balance"] - 2 * water["price"]  # from the server
    assert terminal.balance_estimate(offline_buyer["wallet_id"]) == row.balance
    first_buyer = snapshot.get_wallet(terminal.db, rich[0]["wallet_id"])
    assert first_buyer is not None and first_buyer.balance == rich[0]["balance"]  # voided
    # Every wallet of the school, as the server now says: charged exactly what this test
    # charged it, and not a cent more or elsewhere.
    for w in school["wallets"]:
        server_row = snapshot.get_wallet(terminal.db, w["wallet_id"])
        assert server_row is not None
        assert server_row.balance == w["balance"] - charged.get(w["wallet_id"], 0), (
            f"{w['display_name']} ({w['wallet_id']}) was charged unexpectedly")
    # a tap with an empty cart shows the refreshed balance, charging nothing
    qtbot.wait(1100)
    painted = sale.result.paint_count
    tap(reader, offline_buyer["credential_uid"])
    wait_result(window, qtbot, "info", painted)
    assert format_minor(row.balance, "SAR") in plain(result.amounts.text())

    # -- lock and switch cashier
    qtbot.keyClick(sale, Qt.Key.Key_F12)
    assert window.current_view() is window.login_view
    assert window.counter.locked
    window.shutdown()
