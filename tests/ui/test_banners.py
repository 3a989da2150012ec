"""Problems reach the cashier as banners, never as silent log lines: a sale the server
rejected, and this terminal revoked by the school office. Real app, real server, offscreen."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from sync_server import records
from sync_server.storage.engine import create_engine
from terminal.readers.simulated import SimulatedReader
from tests.ui.conftest import SIZE, open_app, screenshot


def server_side(db_url: str, change: Any) -> None:
    """Do what an admin would do on the server, in its own database transaction."""
    async def run() -> None:
        engine = create_engine(db_url)
        try:
            async with engine.begin() as conn:
                await change(conn)
        finally:
            await engine.dispose()
    asyncio.run(run())


def test_rejected_sale_and_revoked_device_show_as_banners(qtbot: QtBot, live_server: Any,
                                                          tmp_path: Path) -> None:
    school = live_server.demo["schools"][0]
    cashier = school["cashiers"][0]
    student = next(w for w in school["wallets"]
                   if w["status"] == "active" and w["daily_limit"] is None)
    water = next(p for p in school["products"] if p["name"] == "Water 330ml")
    reader = SimulatedReader()
    window, terminal = open_app(qtbot, tmp_path / "term", live_server.url,
                                school["enrollment_code"], "Counter 9", reader)
    window.start()
    qtbot.waitUntil(lambda: window.current_view() is window.login_view, timeout=20000)
    window.login_view.select(cashier["cashier_id"])
    qtbot.keyClicks(window.login_view.pin, cashier["pin"])
    qtbot.keyClick(window.login_view.pin, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.current_view() is window.sale_view, timeout=5000)

    # The office closes the student's wallet; the terminal still has the old snapshot.
    server_side(live_server.db_url, lambda conn: records.update_wallet(
        conn, school["school_id"], student["wallet_id"], status="closed"))
    qtbot.mouseClick(window.sale_view.product_buttons[water["product_id"]],
                     Qt.MouseButton.LeftButton)
    tapper = threading.Thread(target=reader.tap, args=(student["credential_uid"],))
    tapper.start()
    tapper.join()
    qtbot.waitUntil(lambda: any("rejected or in conflict" in t for t in window.banner.texts()),
                    timeout=10000)
    assert window.banner.isVisible()

    # Then the office revokes this terminal.
    device_id = terminal.status()["device_id"]
    server_side(live_server.db_url, lambda conn: records.revoke_device(conn, device_id))
    window.sale_view.sync_requested.emit()
    qtbot.waitUntil(lambda: any("no longer authorized" in t for t in window.banner.texts()),
                    timeout=10000)
    texts = window.banner.texts()
    assert texts[0].startswith("This terminal is no longer authorized")  # most urgent first
    screenshot(window, "banners")
    assert (window.width(), window.height()) == SIZE
    window.close()


def test_many_problems_at_once_take_two_bars_and_count_the_rest(qtbot: QtBot) -> None:
    from terminal.selling.alerts import Alert
    from terminal.ui.banner import Banner

    banner = Banner()
    qtbot.addWidget(banner)
    problems = [Alert("problem", f"p{i}", f"Problem number {i}") for i in range(4)]
    banner.show_alerts(problems)
    labels = [w.text() for w in banner.findChildren(QLabel)]
    assert len(labels) == 2
    assert labels[0].endswith("Problem number 0")
    assert labels[1].endswith("Problem number 1 (+2 more)")
    assert banner.texts() == [a.message for a in problems]  # nothing is dropped from the model
