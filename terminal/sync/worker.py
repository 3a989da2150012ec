"""Background sync for the cashier app: a thread that runs sync cycles and reports them.

The thread never touches the GUI: it only calls ``on_report`` (the app turns that into a Qt
signal). Recording a sale never waits for it; :meth:`wake` merely shortens the next wait so a
fresh sale goes out promptly when the network is up.

Updates from the server arrive two ways. While the event stream is held
(:mod:`terminal.sync.events`), each event wakes this thread, which pulls the delta at once: a
top-up or a blocked bracelet reaches the till within a second or two. Events that arrive while
a cycle runs give one more cycle, not one each, and event-driven pulls are at least
``STREAM_MIN_PULL_GAP_S`` apart, so a burst costs a few pulls. A sale's cycle then only
pushes: its push makes the server announce a new version, and that event brings the pull. The
poll then only runs every ``STREAM_SAFETY_POLL_S``. While the stream is down (server
restarting, a proxy that does not pass it, an older server), the till polls every ``interval``
as it always did; the core's :meth:`~terminal.core.Terminal.set_live_updates` tells the status
bar which of the two it is.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from terminal.settings import (
    STREAM_MIN_PULL_GAP_S,
    STREAM_READ_TIMEOUT_S,
    STREAM_SAFETY_POLL_S,
    SYNC_INTERVAL_S,
)
from terminal.store import state
from terminal.sync.backoff import Backoff
from terminal.sync.cycle import SyncReport

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from terminal.core import Terminal
    from terminal.sync.events import EventListener


class SyncWorker:
    """``stream=False`` polls only (the stream is also skipped while the server has never
    answered). The ``stream_*``, ``safety_interval`` and ``min_pull_gap`` knobs exist for
    tests and benchmarks that cannot wait out the production values."""

    def __init__(self, terminal: Terminal, *, interval: float = SYNC_INTERVAL_S,
                 on_report: Callable[[SyncReport], None] | None = None,
                 backoff: Backoff | None = None, stream: bool = True,
                 safety_interval: float = STREAM_SAFETY_POLL_S,
                 min_pull_gap: float = STREAM_MIN_PULL_GAP_S,
                 stream_backoff: Callable[[], Backoff] = Backoff,
                 stream_read_timeout: float = STREAM_READ_TIMEOUT_S) -> None:
        self._terminal = terminal
        self._interval = interval
        self._on_report = on_report
        self._backoff = backoff or Backoff()
        self._stream = stream
        self._safety_interval = max(safety_interval, interval)
        self._min_pull_gap = min_pull_gap
        self._stream_backoff = stream_backoff
        self._stream_read_timeout = stream_read_timeout
        self._stop = threading.Event()
        # What the thread is waiting for, guarded by the condition: a wake-up (a sale, the
        # cashier's "sync now"), an event from the stream, or the stream going down.
        self._cond = threading.Condition()
        self._woken = False
        self._event = False
        self._listener: EventListener | None = None
        self._refused_at = float("-inf")
        self._thread = threading.Thread(target=self._run, name="pos-sync", daemon=True)
        self.cycles = 0             # cycles run (tests read it)
        self.event_cycles = 0       # of which were woken by the stream alone

    @property
    def listener(self) -> EventListener | None:
        return self._listener

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        with self._cond:
            self._woken = True
            self._cond.notify()

    def stop(self, timeout: float = 20.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify()
        listener = self._listener
        if listener is not None:
            listener.stop(min(timeout, 2.0))
        self._thread.join(timeout)

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        last_event_cycle = float("-inf")
        try:
            while not self._stop.is_set():
                with self._cond:
                    by_event = self._event and not self._woken
                    # a wake with no event pending since the last cycle
                    push_only = self._woken and not self._event
                    self._event = self._woken = False
                if by_event:
                    # a burst of events: what arrives during this gap joins this one pull
                    gap = last_event_cycle + self._min_pull_gap - time.monotonic()
                    if gap > 0 and self._stop.wait(gap):
                        break
                    with self._cond:
                        by_event = not self._woken
                        self._event = self._woken = False
                    last_event_cycle = time.monotonic()
                    self.event_cycles += by_event
                # A sale (or "sync now") while the stream is live: push only. Its event, and
                # any other change's, brings the pull; a timer's cycle still does both.
                report = self._cycle(pull_only=by_event,
                                     push_only=push_only and self._live())
                self.cycles += 1
                if self._on_report is not None:
                    self._on_report(report)
                self._keep_stream(report)
                if report.unreachable:
                    delay = self._backoff.next_delay(report.retry_after)
                else:
                    self._backoff.reset()
                    delay = self._safety_interval if self._live() else self._interval
                # A wake-up skips the wait, except while backing off from an unreachable
                # server; an event skips even that (the server just proved it is there).
                self._wait(delay, backing_off=report.unreachable)
        finally:
            if self._listener is not None:
                self._listener.stop(0)
            self._terminal.set_live_updates(False)
            self._terminal.close_thread_store()

    def _cycle(self, *, pull_only: bool, push_only: bool = False) -> SyncReport:
        """One sync cycle; an error nobody expected (a disk full, a bug) is logged and treated
        like an unreachable server, so the thread backs off and tries again instead of dying
        and leaving the till's queue unsent until someone restarts the app."""
        try:
            return self._terminal.sync_once(pull_only=pull_only, push_only=push_only)
        except Exception as exc:
            log.exception("sync cycle failed; trying again after a pause")
            return SyncReport(error=f"sync failed: {type(exc).__name__}", unreachable=True)

    def _wait(self, delay: float, *, backing_off: bool) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._stop.is_set() or self._event
                                or (self._woken and not backing_off), delay)

    def _live(self) -> bool:
        return self._listener is not None and self._listener.live

    # ------------------------------------------------------------------ the stream

    def _keep_stream(self, report: SyncReport) -> None:
        """Hold the stream while the device is in good standing. A listener that a 401/403
        ended is started again only after a cycle the server answered without an auth problem,
        and a safety poll after the refusal at the earliest, so a revoked till never
        reconnects in a loop."""
        if not self._stream or report.auth_problem is not None or not report.reached:
            return
        listener = self._listener
        if listener is not None and (listener.running() or (
                listener.refused is not None
                and time.monotonic() - self._refused_at < self._safety_interval)):
            return
        device = state.get_device(self._terminal.db)
        if device is None:
            return
        from terminal.sync.events import EventListener  # httpx is loaded by the cycle already

        self._listener = EventListener(
            device.server_url, device.device_token, on_event=self._on_event,
            on_live=self._on_live, on_refused=self._on_refused,
            backoff=self._stream_backoff(), read_timeout=self._stream_read_timeout)
        self._listener.start()

    def _on_event(self, _version: str | None, _first: bool) -> None:
        # The first event of each connection too: while the stream was down something may
        # have changed that no event will repeat.
        with self._cond:
            self._event = True
            self._cond.notify()

    def _on_live(self, live: bool) -> None:
        self._terminal.set_live_updates(live)
        if not live:
            self.wake()  # back to polling at once: an event may have been missed

    def _on_refused(self, _problem: str) -> None:
        # The cycle asks the server again and records what it says (a revoked till stops
        # selling); the stream is tried again only after a good cycle, a safety poll later.
        self._refused_at = time.monotonic()
        self.wake()
