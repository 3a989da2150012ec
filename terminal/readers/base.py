"""The one interface every bracelet reader implements.

Readers get unplugged, services restart, and hardware threads must never touch the GUI
(Electrum's lesson): a reader runs its own worker, and only *emits* events through the
callback it was started with. The app turns them into Qt signals on the GUI thread; the
headless command line just prints them. Nothing here imports Qt.
"""

from __future__ import annotations

import abc
import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass

NO_READER = "no reader connected"


class ReaderState(enum.Enum):
    CONNECTED = "connected"          # a reader is present and being polled
    DISCONNECTED = "disconnected"    # no reader / service down; the reader keeps retrying
    STOPPED = "stopped"              # stop() was called


@dataclass(frozen=True, slots=True)
class Tap:
    """One physical tap: a bracelet UID, upper-case hex without separators."""

    uid: str


@dataclass(frozen=True, slots=True)
class StateChange:
    state: ReaderState
    message: str  # plain words for the cashier: "reader service not running", "ACR122U ready"


ReaderEvent = Tap | StateChange
EventSink = Callable[[ReaderEvent], None]


class BraceletReader(abc.ABC):
    """Start with a sink, receive :class:`Tap` and :class:`StateChange` events, stop cleanly.

    Contract for implementations:
    - ``start`` returns at once; work happens in a worker thread (or, for the keyboard wedge,
      in Qt's event loop). Calling ``start`` twice is an error.
    - One physical tap emits one :class:`Tap` (a bracelet left on the reader is not re-read).
    - Losing the reader emits ``DISCONNECTED`` and the reader retries by itself; regaining it
      emits ``CONNECTED``. ``stop`` joins the worker within about a second.
    - Never log a full UID: use :func:`shared.ids.mask_uid`.
    """

    kind: str = "abstract"

    def __init__(self) -> None:
        self._sink: EventSink | None = None
        self._state = ReaderState.STOPPED
        self._state_message = "not started"
        self._lock = threading.Lock()

    @property
    def state(self) -> ReaderState:
        return self._state

    @property
    def state_message(self) -> str:
        return self._state_message

    def describe(self) -> str:
        """Short text for the status bar and ``pos-terminal status``: ``pcsc: ACR122U 00 00``."""
        return f"{self.kind}: {self._state_message}"

    def start(self, sink: EventSink) -> None:
        with self._lock:
            if self._sink is not None:
                raise RuntimeError("reader already started")
            self._sink = sink
        try:
            self._start()
        except BaseException:
            with self._lock:  # a failed start leaves the reader startable again
                self._sink = None
            raise

    def stop(self) -> None:
        self._stop()
        self._set_state(ReaderState.STOPPED, "stopped")
        with self._lock:
            self._sink = None

    # -- for implementations

    @abc.abstractmethod
    def _start(self) -> None: ...

    @abc.abstractmethod
    def _stop(self) -> None: ...

    def _emit_tap(self, uid: str) -> None:
        sink = self._sink
        if sink is not None:
            sink(Tap(uid))

    def _set_state(self, state: ReaderState, message: str) -> None:
        changed = (state, message) != (self._state, self._state_message)
        self._state, self._state_message = state, message
        sink = self._sink
        if changed and sink is not None:
            sink(StateChange(state, message))


class ThreadedReader(BraceletReader):
    """A reader served by one worker thread (PC/SC, nfcpy): started and stopped the same way,
    and silent about a disconnection that is only the reader being stopped."""

    join_timeout = 2.0  # seconds stop() waits for the worker to notice

    def __init__(self) -> None:
        super().__init__()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        self._stop_event.clear()
        self._thread = threading.Thread(target=self._run, name=f"{self.kind}-reader",
                                        daemon=True)
        self._thread.start()

    def _stop(self) -> None:
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=self.join_timeout)
            self._thread = None

    @abc.abstractmethod
    def _run(self) -> None: ...

    def _disconnected(self, message: str) -> None:
        if not self._stop_event.is_set():
            self._set_state(ReaderState.DISCONNECTED, message)

