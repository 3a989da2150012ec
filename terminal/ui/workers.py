"""Threads for the cashier app, bridged into Qt signals.

Electrum's rule: threads that talk to hardware or the network only *report*; the GUI thread
applies what they report. Reader events arrive on the reader's own thread, sync reports on the
sync thread (``terminal.sync.worker``), and one-off slow calls (enrollment, PIN hashing) run
on a plain worker thread; all of them hand their result to the GUI thread, which re-emits it
as an ordinary Qt signal. Nothing here blocks the event loop, even when the server accepts a
connection and never answers.

Why not emit Qt signals from those threads directly (the textbook queued connection): with
PySide6 6.12 on Python 3.11, emitting any signal from a plain Python thread crashes the process
after a few hundred emissions ("Fatal Python error: bool_dealloc"/"none_dealloc", a reference
count bug, see PYSIDE-3124). A counter that crashes at the 300th tap of lunch is not an
option, so the threads never call Qt at all: :class:`ThreadInbox` takes items on a plain
``queue.SimpleQueue`` and wakes the GUI thread with one byte on a socket pair, watched by a
``QSocketNotifier``. The wake-up is as fast as a queued signal and needs no polling.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QSocketNotifier, Signal

from terminal.readers.base import BraceletReader, ReaderEvent, StateChange, Tap
from terminal.settings import SYNC_INTERVAL_S
from terminal.sync.backoff import Backoff
from terminal.sync.cycle import SyncReport
from terminal.sync.worker import SyncWorker

log = logging.getLogger(__name__)


class ThreadInbox(QObject):
    """Items put from any thread come out, in order, as ``received`` on the GUI thread.

    Create it on the GUI thread. :meth:`put` touches no Qt object, so it is safe anywhere.
    """

    received = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        self._notifier = QSocketNotifier(self._read.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._drain)

    def put(self, item: Any) -> None:
        self._items.put(item)
        try:
            self._write.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # the buffer is full of wake-ups already, or the inbox is closed

    def _drain(self) -> None:
        try:
            self._read.recv(4096)
        except (BlockingIOError, OSError):
            pass
        while True:
            try:
                item = self._items.get_nowait()
            except queue.Empty:
                return
            self.received.emit(item)

    def close(self) -> None:
        self._notifier.setEnabled(False)
        self._read.close()
        self._write.close()


class ReaderBridge(QObject):
    """The reader's sink: called on the reader's thread, delivers on the GUI thread."""

    tapped = Signal(str, float)          # uid, perf_counter() when the reader reported it
    state_changed = Signal(str, str)     # ReaderState value, message in plain words

    def __init__(self, reader: BraceletReader, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.reader = reader
        self._inbox = ThreadInbox(self)
        self._inbox.received.connect(self._deliver)

    def sink(self, event: ReaderEvent) -> None:
        """Any thread (the wedge reader calls it on the GUI thread, the others on theirs)."""
        if isinstance(event, Tap):
            self._inbox.put((event, time.perf_counter()))
        else:
            self._inbox.put((event, 0.0))

    def _deliver(self, item: tuple[ReaderEvent, float]) -> None:
        event, read_at = item
        if isinstance(event, Tap):
            self.tapped.emit(event.uid, read_at)
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

    def __init__(self, terminal: Any, *, interval: float = SYNC_INTERVAL_S,
                 backoff: Backoff | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._terminal = terminal
        self._interval = interval
        self._backoff = backoff
        self._worker: SyncWorker | None = None
        self._inbox = ThreadInbox(self)
        self._inbox.received.connect(self.report.emit)

    def start(self) -> None:
        if self._worker is None:
            self._worker = SyncWorker(self._terminal, interval=self._interval,
                                      on_report=self._emit, backoff=self._backoff)
            self._worker.start()

    def _emit(self, report: SyncReport) -> None:  # on the sync thread: no Qt calls here
        self._inbox.put(report)

    def wake(self) -> None:
        if self._worker is not None:
            self._worker.wake()

    def stop(self, timeout: float = 1.0) -> None:
        """Do not wait for a hung request: the thread is a daemon and exits with the app."""
        if self._worker is not None:
            self._worker.stop(timeout)
            self._worker = None


_jobs: ThreadInbox | None = None


def _job_inbox() -> ThreadInbox:
    global _jobs
    if _jobs is None:
        _jobs = ThreadInbox()
        _jobs.received.connect(lambda item: item[0](item[1], item[2]))
    return _jobs


def run_in_background(fn: Callable[[], Any],
                      on_done: Callable[[Any, BaseException | None], None],
                      *, terminal: Any = None) -> threading.Thread:
    """Run ``fn`` on a worker thread; ``on_done(result, error)`` runs on the GUI thread.

    Call it from the GUI thread. ``terminal``: its per-thread SQLite connection is closed
    when the job ends.
    """
    inbox = _job_inbox()

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
        inbox.put((on_done, result, error))

    thread = threading.Thread(target=work, name="pos-job", daemon=True)
    thread.start()
    return thread
