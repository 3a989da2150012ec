"""Threads for the cashier app, bridged into Qt signals.

Electrum's rule: threads that talk to hardware or the network only *emit*; the GUI thread
applies what they report. Reader events arrive on the reader's own thread and are re-emitted
as Qt signals with queued connections; the sync thread (``terminal.sync.worker``) reports the
same way; one-off slow calls (enrollment, PIN hashing) run on a plain worker thread and hand
their result back through a signal. Nothing here blocks the event loop, even when the server
accepts a connection and never answers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal

from terminal.readers.base import BraceletReader, ReaderEvent, StateChange, Tap
from terminal.sync.backoff import Backoff
from terminal.sync.cycle import SyncReport
from terminal.sync.worker import SyncWorker

log = logging.getLogger(__name__)


class ReaderBridge(QObject):
    """The reader's sink: called on the reader's thread, delivers on the GUI thread."""

    tapped = Signal(str, float)          # uid, perf_counter() when the reader reported it
    state_changed = Signal(str, str)     # ReaderState value, message in plain words

    def __init__(self, reader: BraceletReader, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.reader = reader

    def sink(self, event: ReaderEvent) -> None:
        if isinstance(event, Tap):
            self.tapped.emit(event.uid, time.perf_counter())
        elif isinstance(event, StateChange):
            self.state_changed.emit(event.state.value, event.message)

    def start(self) -> None:
        self.reader.start(self.sink)

    def stop(self) -> None:
        try:
            self.reader.stop()
        except Exception:  # a reader that fails to stop must not keep the app from closing
            log.exception("reader did not stop cleanly")


class SyncBridge(QObject):
    """Owns the background sync thread; ``report`` fires on the GUI thread after each cycle."""

    report = Signal(object)  # SyncReport

    def __init__(self, terminal: Any, *, interval: float = 15.0,
                 backoff: Backoff | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._terminal = terminal
        self._interval = interval
        self._backoff = backoff
        self._worker: SyncWorker | None = None

    def start(self) -> None:
        if self._worker is None:
            self._worker = SyncWorker(self._terminal, interval=self._interval,
                                      on_report=self._emit, backoff=self._backoff)
            self._worker.start()

    def _emit(self, report: SyncReport) -> None:  # on the sync thread
        self.report.emit(report)

    @property
    def running(self) -> bool:
        return self._worker is not None

    def wake(self) -> None:
        if self._worker is not None:
            self._worker.wake()

    def stop(self, timeout: float = 1.0) -> None:
        """Do not wait for a hung request: the thread is a daemon and exits with the app."""
        if self._worker is not None:
            self._worker.stop(timeout)
            self._worker = None


class _Done(QObject):
    finished = Signal(object, object)  # result, exception


_running: set[_Done] = set()


def run_in_background(fn: Callable[[], Any],
                      on_done: Callable[[Any, BaseException | None], None],
                      *, terminal: Any = None) -> threading.Thread:
    """Run ``fn`` on a worker thread; ``on_done(result, error)`` runs on the GUI thread.

    ``terminal``: its per-thread SQLite connection is closed when the job ends.
    """
    done = _Done()
    done.finished.connect(lambda r, e: (_running.discard(done), on_done(r, e)),
                          Qt.ConnectionType.QueuedConnection)
    _running.add(done)

    def work() -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = fn()
        except BaseException as exc:  # handed to the GUI thread, which decides what to say
            error = exc
        finally:
            if terminal is not None:
                terminal.close_thread_store()
        done.finished.emit(result, error)

    thread = threading.Thread(target=work, name="pos-job", daemon=True)
    thread.start()
    return thread
