"""The GUI keeps running while the server accepts connections and never answers."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from terminal.app import create_window
from terminal.readers.simulated import SimulatedReader
from terminal.sync.backoff import Backoff
from tests.ui.conftest import SIZE, offline_terminal, wallet


class SilentServer:
    """Accepts TCP connections on loopback and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def test_gui_keeps_running_while_the_server_hangs(qtbot: QtBot, tmp_path: Path,
                                                  silent_server: SilentServer) -> None:
    terminal = offline_terminal(
        tmp_path / "term", silent_server.url,
        [wallet("w1", "Sara K.", 10_000), wallet("w2", "Omar B.", 10_000)],
        [{"uid": "04AA000000000001", "wallet_id": "w1", "status": "active"},
         {"uid": "04AA000000000002", "wallet_id": "w2", "status": "active"}],
        http_timeout=60.0)  # a request would hang for a minute
    reader = SimulatedReader()
    window = create_window(tmp_path / "term", terminal=terminal, reader=reader,
                           backoff=Backoff(base=0.2, cap=0.5))
    qtbot.addWidget(window)
    window.resize(*SIZE)
    window.show()
    window.start()  # enrolled: the sync thread starts and its first request hangs
    window.counter.log_in("cash1", "Amal")
    window.show_sale()
    qtbot.waitUntil(lambda: len(silent_server.accepted) >= 1, timeout=5000)

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    start = time.perf_counter()
    sale = window.sale_view
    for uid in ["04AA000000000001", "04AA000000000002"] * 2:
        window.sync_now()  # asking again must not block either
        sale.add_nth(1)
        painted = sale.result.paint_count
        threading.Thread(target=reader.tap, args=(uid,)).start()
        qtbot.waitUntil(lambda p=painted: sale.result.paint_count > p
                        and sale.result.state == "approved", timeout=2000)
        qtbot.wait(600)  # so the same bracelet comes back after the 1 s de-duplication window
    qtbot.wait(max(0, int(3100 - (time.perf_counter() - start) * 1000)))
    timer.stop()
    elapsed = time.perf_counter() - start

    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert elapsed >= 2.9
    assert len(ticks) >= 0.7 * elapsed / 0.020, f"only {len(ticks)} ticks in {elapsed:.1f}s"
    assert max(gaps) < 0.25, f"the event loop stalled for {max(gaps) * 1000:.0f} ms"
    assert terminal.status()["queued"] == 4  # recorded locally; nothing could be sent

    t0 = time.perf_counter()
    window.shutdown()  # must not wait for the hung request
    assert time.perf_counter() - t0 < 3.0
