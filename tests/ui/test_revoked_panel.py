"""A terminal the school revokes stops selling at once, and the sale screen itself (not only a
banner or the status bar) says why and what to do. Real app, real server in-process, the real
``pos-server revoke-device``, offscreen at 1024x600."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from terminal.readers.simulated import SimulatedReader
from tests.terminal.cli_run import BIN, ROOT
from tests.ui.conftest import SIZE, open_app, screenshot


def tap(reader: SimulatedReader, uid: str) -> None:
    thread = threading.Thread(target=reader.tap, args=(uid,))
    thread.start()
    thread.join()


def test_revoked_terminal_stops_selling_and_the_sale_screen_says_why(
        qtbot: QtBot, live_server: Any, tmp_path: Path) -> None:
    school = live_server.demo["schools"][0]
    cashier = school["cashiers"][0]
    water = next(p for p in school["products"] if p["name"] == "Water 330ml")
    students = [w for w in school["wallets"]
                if w["status"] == "active" and w["daily_limit"] is None]
    reader = SimulatedReader()
    window, terminal = open_app(qtbot, tmp_path / "term", live_server.url,
                                school["enrollment_code"], "Counter 7", reader)
    window.start()
    qtbot.waitUntil(lambda: window.current_view() is window.login_view, timeout=20000)
    window.login_view.select(cashier["cashier_id"])
    qtbot.keyClicks(window.login_view.pin, cashier["pin"])
    qtbot.keyClick(window.login_view.pin, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.current_view() is window.sale_view, timeout=5000)
    sale, panel = window.sale_view, window.sale_view.result
    button = sale.product_buttons[water["product_id"]]

    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    tap(reader, students[0]["credential_uid"])
    qtbot.waitUntil(lambda: panel.state == "approved", timeout=5000)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)  # the next order is on the counter

    done = subprocess.run([str(BIN / "pos-server"), "revoke-device", "--db", live_server.db_url,
                           "--device", terminal.status()["device_id"]], capture_output=True,
                          text=True, cwd=ROOT, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    sale.sync_requested.emit()
    qtbot.waitUntil(lambda: panel.state == "stopped", timeout=10000)

    assert panel.headline.text() == "SELLING STOPPED"
    assert "revoked by the school office" in panel.detail.text()
    assert "Call the school office" in panel.detail.text()
    assert window.banner.texts()[0].startswith("This terminal is no longer authorized")
    assert not button.isEnabled()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    sale.add_nth(1)  # the number keys add nothing either
    assert sale.cart.total == water["price"]
    assert sale.history_button.isEnabled() and sale.lock_button.isEnabled()
    assert (window.width(), window.height()) == SIZE
    screenshot(window, "revoked")

    # A bracelet tapped anyway is refused in the same words; nothing is queued.
    tap(reader, students[1]["credential_uid"])
    qtbot.waitUntil(lambda: panel.state == "refused", timeout=5000)
    assert panel.outcome is not None and panel.outcome.code == "device_revoked"
    assert "revoked by the school office" in panel.detail.text()
    assert terminal.status()["last_seq"] == 1 and len(terminal.history()) == 1
    window.shutdown()
    window.close()
