"""Background sync for the cashier app: a thread that runs sync cycles and reports them.

The thread never touches the GUI: it only calls ``on_report`` (the app turns that into a Qt
signal). Recording a sale never waits for it; :meth:`wake` merely shortens the next wait so a
fresh sale goes out promptly when the network is up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from terminal.settings import SYNC_INTERVAL_S
from terminal.sync.backoff import Backoff
from terminal.sync.cycle import SyncReport

if TYPE_CHECKING:
    from terminal.core import Terminal


class SyncWorker:
    def __init__(self, terminal: Terminal, *, interval: float = SYNC_INTERVAL_S,
                 on_report: Callable[[SyncReport], None] | None = None,
                 backoff: Backoff | None = None) -> None:
        self._terminal = terminal
        self._interval = interval
        self._on_report = on_report
        self._backoff = backoff or Backoff()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pos-sync", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 20.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            report = self._terminal.sync_once()
            if self._on_report is not None:
                self._on_report(report)
            if report.unreachable:
                delay = self._backoff.next_delay(report.retry_after)
            else:
                self._backoff.reset()
                delay = self._interval
            # A wake-up skips the wait, except while backing off from an unreachable server.
            if report.unreachable:
                self._stop.wait(delay)
            else:
                self._wake.wait(delay)
        self._terminal.close_thread_store()
