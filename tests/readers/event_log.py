"""A reader sink that tests can wait on; events arrive on the reader's worker thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from terminal.readers.base import ReaderEvent, ReaderState, StateChange, Tap


class EventLog:
    """A reader sink that tests can wait on; events arrive on the reader's worker thread."""

    def __init__(self) -> None:
        self.events: list[tuple[float, ReaderEvent]] = []
        self._cond = threading.Condition()

    def __call__(self, event: ReaderEvent) -> None:
        with self._cond:
            self.events.append((time.monotonic(), event))
            self._cond.notify_all()

    @property
    def taps(self) -> list[str]:
        with self._cond:
            return [e.uid for _, e in self.events if isinstance(e, Tap)]

    @property
    def states(self) -> list[StateChange]:
        with self._cond:
            return [e for _, e in self.events if isinstance(e, StateChange)]

    def wait_for(
        self, match: Callable[[ReaderEvent], bool], timeout: float = 5.0, after: int = 0
    ) -> tuple[float, ReaderEvent]:
        """The first event at index >= ``after`` that matches, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for stamp, event in self.events[after:]:
                    if match(event):
                        return stamp, event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no matching reader event within {timeout} s; got {self.events[after:]}"
                    )
                self._cond.wait(left)

    def wait_tap(self, timeout: float = 5.0, after: int = 0) -> tuple[float, str]:
        stamp, event = self.wait_for(lambda e: isinstance(e, Tap), timeout, after)
        assert isinstance(event, Tap)
        return stamp, event.uid

    def wait_state(self, state: ReaderState, timeout: float = 5.0, after: int = 0) -> StateChange:
        _, event = self.wait_for(
            lambda e: isinstance(e, StateChange) and e.state is state, timeout, after
        )
        assert isinstance(event, StateChange)
        return event

    def mark(self) -> int:
        with self._cond:
            return len(self.events)
