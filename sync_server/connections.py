"""Slow and numerous clients: how much of a worker one connection, and all of them, may hold.

- **Request heads**: aiohttp closes a connection that has not sent a complete request head
  within its keep-alive timeout, counted from the moment it opens (and again after each
  response), so ``header_timeout_seconds`` is that timeout. A slowloris client sending its
  headers byte by byte is closed after it, however steadily it trickles.
- **Bodies**: :func:`body_deadline` gives a body ``body_timeout_seconds`` to arrive, then 408.
- **Connections per worker**: :class:`GuardedServer` keeps at most ``max_connections`` open.
  At the cap, a new connection closes the longest-idle one (a connection waiting for a request
  head: slow, silent or an idle keep-alive), so a flood of slow clients cannot lock out
  ``/api/v1/health`` or a terminal's push; only when every connection is busy with a request
  is the new one answered ``503`` with ``Retry-After`` and closed.
- **Open files**: every connection is a file descriptor. ``serve`` raises the soft
  ``RLIMIT_NOFILE`` to the hard one (systemd's ``LimitNOFILE``) and the cap leaves room below
  it for the database connections, logs and a burst of accepts, so the listener does not run
  out of descriptors ("Too many open files"); if it ever does, asyncio's accept error is one
  log line a minute instead of a traceback a second.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Pending connections the kernel holds for the listener (gunicorn's default; Linux caps it at
# net.core.somaxconn). asyncio also accepts up to this many at a time before any protocol
# runs, so with few descriptors it is kept smaller (see listen_backlog).
BACKLOG = 2048


def raise_open_files_limit() -> int:
    """Lift the soft limit on open files to the hard one (as nginx and systemd services do);
    returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def listen_backlog(open_files: int) -> int:
    """The listen backlog, and so asyncio's accept batch: at least aiohttp's own 128 (what its
    gunicorn worker listens with), at most :data:`BACKLOG`, an eighth of the open-files limit
    in between."""
    return min(BACKLOG, max(128, open_files // 8))


def connection_cap(configured: int | None, open_files: int, pool_capacity: int) -> int:
    """The connections one worker may hold: what was configured, at most what the open-files
    limit leaves after the database (three files a SQLite connection), 64 for logs and the
    like, and two accept batches (accepted before the cap closes anything)."""
    reserve = 64 + 3 * pool_capacity + 2 * listen_backlog(open_files)
    room = max(16, open_files - reserve)
    return min(configured, room) if configured else room


class BodyTimeout(TimeoutError):
    """Set on a request's payload when its body is late. A ``TimeoutError``, so aiohttp's
    lingering read after the response ends quietly and closes the connection."""


def body_deadline(seconds: float) -> Middleware:
    """Middleware: a request body must arrive within ``seconds`` of its head, or 408."""

    @web.middleware
    async def deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.body_exists:
            return await handler(request)
        timer = asyncio.get_running_loop().call_later(seconds, _expire, request.content)
        try:
            return await handler(request)
        except BodyTimeout:
            raise web.HTTPRequestTimeout(
                text=f"the request body did not arrive within {seconds:g} s") from None
        finally:
            timer.cancel()

    return deadline


def _expire(payload: StreamReader) -> None:
    if not payload.is_eof():
        payload.set_exception(BodyTimeout("request body too slow"))


class GuardedServer(web.Server):
    """aiohttp's protocol factory with a cap on open connections (see the module doc).

    It reads aiohttp internals: ``RequestHandler._waiter`` (the future a connection awaits its
    next request head on; aiohttp's own keep-alive check reads it the same way) and the
    ``Server``'s ``_kwargs``, so ``tests/server/test_slow_clients.py`` pins the behaviour
    against the installed aiohttp."""

    def __init__(self, *args: Any, max_connections: int, retry_after: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_connections, self.retry_after = max_connections, retry_after
        self.open = 0
        self.closed_idle = self.refused = 0
        self._full_since: float | None = None

    def __call__(self) -> RequestHandler:
        if self.open >= self.max_connections:
            if self._full_since is None:
                self._full_since, self.closed_idle, self.refused = time.monotonic(), 0, 0
                log.warning("%d connections open, the cap: closing the longest-idle ones (slow "
                            "or silent clients) to make room", self.open)
            if not self._close_longest_idle():
                self.refused += 1
                return cast(RequestHandler, _Refusal(self.retry_after))
        return super().__call__()

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        self.open += 1
        super().connection_made(handler, transport)

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        self.open -= 1
        super().connection_lost(handler, exc)
        if self._full_since is not None and self.open < self.max_connections * 0.9:
            log.warning("connections back under the cap after %.1f s: %d idle closed, %d "
                        "refused", time.monotonic() - self._full_since, self.closed_idle,
                        self.refused)
            self._full_since = None

    def _close_longest_idle(self) -> bool:
        for handler in self._connections:  # oldest first (insertion order)
            waiter = handler._waiter
            if handler.transport is not None and waiter is not None and not waiter.done():
                handler.force_close()
                self.closed_idle += 1
                return True
        return False


class _Refusal(asyncio.Protocol):
    """Answers a connection 503 before reading it, and closes it."""

    def __init__(self, retry_after: int) -> None:
        self._answer = (b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: %d\r\n"
                        b"Content-Length: 0\r\nConnection: close\r\n\r\n" % retry_after)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.WriteTransport, transport).write(self._answer)
        transport.close()


class GuardedRunner(web.AppRunner):
    """An ``AppRunner`` whose sites listen through a :class:`GuardedServer`."""

    def __init__(self, app: web.Application, *, max_connections: int, retry_after: int,
                 open_files: int, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._cap = (max_connections, retry_after)
        self._open_files = open_files

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(_AcceptErrors(self._open_files))
        return GuardedServer(plain.request_handler, request_factory=plain.request_factory,
                             handler_cancellation=plain.handler_cancellation, loop=loop,
                             max_connections=self._cap[0], retry_after=self._cap[1],
                             **plain._kwargs)


class _AcceptErrors:
    """asyncio logs a traceback each second while ``accept()`` fails for lack of descriptors;
    one line a minute says the same."""

    def __init__(self, open_files: int) -> None:
        self._open_files, self._last, self._count = open_files, 0.0, 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if not str(context.get("message", "")).startswith("socket.accept() out of system"):
            loop.default_exception_handler(context)
            return
        self._count += 1
        if time.monotonic() - self._last >= 60:
            self._last = time.monotonic()
            log.error("cannot accept connections: %s (open-files limit %d; %d time(s) since "
                      "the last line); asyncio retries every second", context.get("exception"),
                      self._open_files, self._count)
            self._count = 0


def serve_single(app: web.Application, host: str, port: int, *, max_connections: int,
                 retry_after: int, open_files: int, header_timeout: float,
                 access_log_format: str) -> None:
    """``serve`` with one process: the app on ``host:port`` until SIGTERM or SIGINT, then the
    requests in progress finish (up to 60 s) and it returns."""

    async def run() -> None:
        runner = GuardedRunner(app, max_connections=max_connections, retry_after=retry_after,
                               open_files=open_files, keepalive_timeout=header_timeout,
                               access_log_format=access_log_format)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, backlog=listen_backlog(open_files),
                               reuse_address=True)
            await site.start()
            log.info("======== Running on %s (at most %d connections) ========", site.name,
                     max_connections)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(run())
