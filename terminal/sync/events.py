"""Holding the server's event stream, ``GET /api/v1/sync/events`` (spec v1.1).

The stream only says *that* the school's snapshot changed (``event: snapshot`` with an opaque
version); the sync worker then pulls the delta with its cursor, so nothing here touches the
store. One thread holds one connection; when it drops (server restarted, network lost, a proxy
timing it out, a read silent for over two pings) it reconnects with :class:`Backoff` (full
jitter, ``Retry-After`` as a floor), so a school's tills coming back together do not reconnect
in lock-step. A 401 or 403 ends the listener for good: retrying cannot fix it, and the sync
cycle records and shows the auth state (a revoked till stops selling).

Callbacks run on the listener's thread and must be quick: the worker merely sets a flag.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable

import httpx
from httpx_sse import SSEError, connect_sse
from pydantic import ValidationError

from shared.problems import Problem
from terminal.settings import STREAM_READ_TIMEOUT_S, STREAM_STABLE_S
from terminal.sync.backoff import Backoff
from terminal.sync.client import USER_AGENT

log = logging.getLogger(__name__)

EVENTS_PATH = "/api/v1/sync/events"
CONNECT_TIMEOUT_S = 3.0

# version (None when the server sent none we could read), first event of this connection
EventCallback = Callable[[str | None, bool], None]


class _Refused(Exception):
    """401/403 before streaming: ``problem`` is ``revoked``, ``forbidden`` or ``unauthorized``
    (the words ``sync_state.auth_problem`` uses)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class _NoStream(Exception):
    """Any other answer that is not a stream; ``retry_after`` is the wait the server asked
    for, or the backoff's ceiling for an answer that retrying soon will not change (a 404
    from a server older than v1.1)."""

    def __init__(self, reason: str, retry_after: float | None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class EventListener:
    """Holds the stream of one device in a daemon thread until :meth:`stop` or a 401/403.

    ``on_event(version, first)`` runs for each ``snapshot`` event (``first`` for the one the
    server sends right after connecting, which tells the current version); ``on_live(live)``
    when the stream comes up or goes down; ``on_refused(problem)`` once, when the server
    refused the device. ``attempts`` counts connections tried (tests read it).
    """

    def __init__(self, server_url: str, device_token: str, *,
                 on_event: EventCallback,
                 on_live: Callable[[bool], None] | None = None,
                 on_refused: Callable[[str], None] | None = None,
                 backoff: Backoff | None = None,
                 read_timeout: float = STREAM_READ_TIMEOUT_S,
                 stable_after: float = STREAM_STABLE_S) -> None:
        self._url = server_url.rstrip("/")
        self._token = device_token
        self._on_event = on_event
        self._on_live = on_live
        self._on_refused = on_refused
        self._backoff = backoff or Backoff()
        self._timeout = httpx.Timeout(read_timeout, connect=CONNECT_TIMEOUT_S)
        self._stable_after = stable_after
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._run, name="pos-sync-events", daemon=True)
        self.attempts = 0
        self.live = False
        self.refused: str | None = None   # set when a 401/403 ended the listener

    def start(self) -> None:
        self._thread.start()

    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 2.0) -> None:
        """End the stream now: the blocked read is woken by shutting the socket down (closing
        it from another thread would not wake it)."""
        self._stop.set()
        with self._lock:
            response = self._response
        if response is not None:
            _shutdown(response)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        headers = {"User-Agent": USER_AGENT, "Authorization": f"Bearer {self._token}"}
        with httpx.Client(base_url=self._url, headers=headers, timeout=self._timeout) as http:
            while not self._stop.is_set():
                self.attempts += 1
                retry_after: float | None = None
                up_since: list[float] = []
                try:
                    self._hold(http, up_since)
                    reason = "closed by the server"
                except _Refused as exc:
                    self._set_live(False)
                    self.refused = exc.problem
                    log.warning("the server refused this terminal's event stream (%s); "
                                "updates come by polling", exc.problem)
                    if self._on_refused is not None:
                        self._on_refused(exc.problem)
                    return
                except _NoStream as exc:
                    retry_after, reason = exc.retry_after, str(exc)
                except (httpx.HTTPError, httpx.StreamError, SSEError, OSError) as exc:
                    reason = type(exc).__name__
                except Exception as exc:  # a bug here must not end live updates for good
                    log.exception("event stream failed unexpectedly; trying again later")
                    reason = type(exc).__name__
                was_live = self.live
                self._set_live(False)
                if self._stop.is_set():
                    break
                if up_since and time.monotonic() - up_since[0] >= self._stable_after:
                    self._backoff.reset()
                delay = self._backoff.next_delay(retry_after)
                if was_live:
                    log.info("event stream dropped (%s); polling until it is back", reason)
                else:
                    log.debug("event stream not open (%s); next try in %.1f s", reason, delay)
                self._stop.wait(delay)
        self._set_live(False)

    def _hold(self, http: httpx.Client, up_since: list[float]) -> None:
        """One connection, until it ends; appends the moment it went live to ``up_since``."""
        with connect_sse(http, "GET", EVENTS_PATH) as source:
            response = source.response
            with self._lock:
                self._response = response
            try:
                if self._stop.is_set():  # stop() came while this was connecting
                    return
                _check(response)
                for sse in source.iter_sse():
                    if self._stop.is_set():
                        return
                    if sse.event != "snapshot":
                        continue  # an event this release does not know: nothing to pull
                    first = not self.live
                    if first:
                        up_since.append(time.monotonic())
                        self._set_live(True)
                        log.info("event stream open: updates arrive live")
                    self._on_event(_version(sse.data), first)
            finally:
                with self._lock:
                    self._response = None

    def _set_live(self, live: bool) -> None:
        if live == self.live:
            return
        self.live = live
        if self._on_live is not None:
            self._on_live(live)


def _check(response: httpx.Response) -> None:
    status = response.status_code
    if status == 200:
        return
    response.read()
    if status in (401, 403):
        try:
            slug = Problem.model_validate_json(response.content).slug
        except ValidationError:
            slug = None
        raise _Refused("unauthorized" if status == 401
                       else "revoked" if slug == "device-revoked" else "forbidden")
    if status == 429 or status >= 500:
        raise _NoStream(f"HTTP {status}", _retry_after(response))
    raise _NoStream(f"HTTP {status}", float("inf"))  # capped to the backoff's ceiling


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _version(data: str) -> str | None:
    try:
        body = json.loads(data)
    except ValueError:
        return None
    version = body.get("version") if isinstance(body, dict) else None
    return str(version) if version is not None else None


def _shutdown(response: httpx.Response) -> None:
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed: the read has ended anyway
