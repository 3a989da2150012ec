"""What a core mutation changed, so each view redraws only that (Anki's model).

The cashier app used to poll the core about 14 queries a second to find out whether anything
had moved. Now every mutation of :class:`terminal.core.Terminal` (a sale, a void, a sync
result, a snapshot applied, a reader state, a settings change) tells its listeners which of
these parts changed, after its transaction committed. Listeners are called on the thread that
made the change (the sync thread for sync results); the UI layer turns the call into a queued
Qt signal, so nothing here knows about Qt.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Change(enum.Flag):
    NONE = 0
    SALES = enum.auto()       # outbox rows added, or their status/answer changed (push results)
    SNAPSHOT = enum.auto()    # wallets, credentials, products or cashiers changed
    SYNC = enum.auto()        # contact, reachability, acked seq, queued counts, auth problems
    SETTINGS = enum.auto()    # school settings from the server, or this terminal's own settings
    READER = enum.auto()      # the reader's description or state
    ENROLLMENT = enum.auto()  # enrolled, re-enrolled


Listener = Callable[[Change], None]


class Changes:
    """A small thread-safe listener list. A listener that raises is logged and skipped: a
    broken view must never turn a committed sale into an error for the cashier."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)
        return unsubscribe

    def emit(self, what: Change) -> None:
        if not what:
            return
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(what)
            except Exception:
                log.exception("a change listener failed (the change itself is committed)")
