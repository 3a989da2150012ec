"""Database outages and overload answer 503 with ``Retry-After``, never 500 and a traceback.

Terminals retry with backoff and take ``Retry-After`` as its floor, and nothing a refused
request did is kept (a push is applied in one transaction, or not at all), so "come back in a
few seconds" is the honest answer whenever the server cannot serve right now:

- **The database is down, restarting or in recovery** (connection refused or lost, PostgreSQL
  starting up, shutting down or a read-only standby, a SQLite file that cannot be opened, a
  full disk): 503 ``database-unavailable``. The log gets one line when the database stops
  answering and one when it has answered for ``retry_after_seconds`` without a failure (with
  how long it was away and how many requests were refused), not a traceback per request.
  Nothing is short-circuited: every request still tries, so service resumes with the first
  statement that succeeds.
- **Too much at once**: each worker lets as many requests use the database at a time as its
  connection pool holds (:class:`RequestQueue`); up to ``max_waiting_requests`` more wait, for
  at most ``queue_timeout_seconds``; anything beyond answers 503 ``overloaded`` at once,
  before its body is even read. A wait for a pooled connection, PostgreSQL's "too many
  connections" and a SQLite write lock held too long are the same answer. One log line when
  the worker starts refusing, one when it has refused nothing for ``retry_after_seconds``.

API paths get problem+json (the spec's one error shape); the console and everything else a
short plain page. Health checks, static files and the event stream skip the queue (a monitor
must see the truth, a stream lives for hours), but still get the 503 of an outage.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy import event

from ..config import ServerConfig
from ..keys import engine_key
from .problems import ProblemError, problem_response

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DOWN, BUSY = "down", "busy"
SMALL_BODY = 1 << 20
# Paths that wait for nothing: monitoring, assets, long-lived streams.
UNQUEUED = ("/api/v1/health", "/admin/static/", "/api/v1/sync/events", "/metrics")

# PostgreSQL SQLSTATEs (class 08 is "connection exception", 58 "system error").
_PG_STATES = {"57P01": (DOWN, "database shutting down"),
              "57P02": (DOWN, "database crashed"),
              "57P03": (DOWN, "database starting up or in recovery"),
              "25006": (DOWN, "database is read-only (a standby?)"),
              "53300": (BUSY, "database has too many connections")}
_PG_CLASSES = {"08": (DOWN, "connection to the database failed"),
               "53": (DOWN, "database out of resources (disk or memory)"),
               "58": (DOWN, "database system error")}
# SQLite result codes (Python 3.11 names them on the exception).
_SQLITE_CODES = {"SQLITE_BUSY": (BUSY, "database locked"),
                 "SQLITE_LOCKED": (BUSY, "database locked"),
                 "SQLITE_CANTOPEN": (DOWN, "database file cannot be opened"),
                 "SQLITE_IOERR": (DOWN, "database file I/O error"),
                 "SQLITE_FULL": (DOWN, "disk full"),
                 "SQLITE_READONLY": (DOWN, "database file is read-only"),
                 "SQLITE_PERM": (DOWN, "database file not accessible")}
_NETWORK_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE,
                   errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT, errno.ENOTCONN}


def classify(exc: BaseException) -> tuple[str, str] | None:
    """``(DOWN | BUSY, reason)`` when ``exc`` (or what caused it) says the database cannot
    serve right now; ``None`` for everything else, which stays a 500 with its traceback.

    The reason is a fixed phrase, never the exception's text: SQLAlchemy's carries the
    statement and its parameters."""
    for cause in _causes(exc):
        found = _classify_one(cause)
        if found:
            return found
    return None


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 20:
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__
                                        else current.__context__)
    return chain


def _classify_one(exc: BaseException) -> tuple[str, str] | None:
    if isinstance(exc, sa.exc.TimeoutError):  # QueuePool: no connection free in time
        return BUSY, "no database connection free"
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return DOWN, "connection to the database lost"
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str):
        return _PG_STATES.get(state) or _PG_CLASSES.get(state[:2])
    name = getattr(exc, "sqlite_errorname", None)
    if isinstance(name, str):
        return _SQLITE_CODES.get("_".join(name.split("_")[:2]))  # SQLITE_IOERR_SHORT_READ…
    if not _raised_by_database_driver(exc):
        return None  # a client that hung up raises ConnectionResetError too
    if type(exc) is TimeoutError:  # a connection attempt (asyncpg's connect timeout)
        return DOWN, "database connection attempt timed out"
    if isinstance(exc, (ConnectionError, socket.gaierror)):
        return DOWN, "database not reachable"
    if isinstance(exc, OSError) and (exc.errno in _NETWORK_ERRNOS
                                     or str(exc).startswith("Multiple exceptions")):
        return DOWN, "database not reachable"  # asyncpg: every address refused
    if type(exc).__name__ == "InterfaceError" and "closed" in str(exc):
        return DOWN, "connection to the database lost"  # asyncpg, on a dead connection
    return None


_DRIVERS = ("sqlalchemy.", "asyncpg.", "aiosqlite.", "sqlite3.")


def _raised_by_database_driver(exc: BaseException) -> bool:
    """Whether ``exc`` was raised inside the database stack: asyncpg lets socket errors of a
    connection attempt through unwrapped, and they look like any other socket's."""
    trace = exc.__traceback__
    while trace is not None:
        module = trace.tb_frame.f_globals.get("__name__", "")
        if isinstance(module, str) and module.startswith(_DRIVERS):
            return True
        trace = trace.tb_next
    return False


def _small_body(request: web.Request) -> bool:
    """A body to read before the request takes a slot: declared at most ``SMALL_BODY`` (every
    enrollment, login and webhook, and most pushes) and not multipart, which aiohttp parses
    from the stream itself. Others are read by their handler inside the slot, within
    ``body_timeout_seconds``; reading them early would let anyone make a worker hold 8 MiB
    per connection before authentication."""
    size = request.content_length
    return (request.body_exists and size is not None and size <= SMALL_BODY
            and request.content_type != "multipart/form-data")


class DatabaseWatch:
    """Up or down, from what requests see; logs only the changes.

    Back up means statements succeed and none has failed for ``quiet`` seconds: in a partial
    outage (SQLite reads working, its writes failing) reads succeed between failures, and
    the log must not turn into a line per request again."""

    def __init__(self, quiet: float) -> None:
        self.quiet = quiet
        self.down_since: float | None = None
        self.last_failure = 0.0
        self.first_success: float | None = None
        self.refused = 0

    def failed(self, reason: str) -> None:
        now = time.monotonic()
        self.last_failure, self.first_success = now, None
        self.refused += 1
        if self.down_since is None:
            self.down_since, self.refused = now, 1
            log.warning("database unavailable (%s): answering 503 with Retry-After until it "
                        "answers again", reason)

    def answered(self, *_args: Any) -> None:
        """A statement succeeded (an engine event, so it runs for every statement: cheap)."""
        if self.down_since is None:
            return
        now = time.monotonic()
        if self.first_success is None:
            self.first_success = now
        if now - self.last_failure >= self.quiet:
            log.warning("database available again after %.1f s; %d request(s) were answered "
                        "503", self.first_success - self.down_since, self.refused)
            self.down_since = None


class Overloaded(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RequestQueue:
    """At most ``in_flight`` requests at a time, ``waiting`` more queued for ``timeout`` s.

    Sized to the connection pool, so an admitted request finds a connection instead of
    timing out in the pool: one PostgreSQL worker given 3,000 requests at once answered
    368 of them 500 that way (issue 11)."""

    def __init__(self, in_flight: int, waiting: int, timeout: float, quiet_after: float) -> None:
        self.in_flight, self.max_waiting, self.timeout = in_flight, waiting, timeout
        self._slots = asyncio.Semaphore(in_flight)
        self._waiting = 0
        self._quiet_after = quiet_after
        self._shedding_since: float | None = None
        self._last_refusal = 0.0
        self.refused = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._slots.locked():
            if self._waiting >= self.max_waiting:
                raise Overloaded(f"{self.in_flight} requests in progress and "
                                 f"{self._waiting} waiting")
            self._waiting += 1
            try:
                async with asyncio.timeout(self.timeout):
                    await self._slots.acquire()
            except TimeoutError:
                raise Overloaded(f"a request waited {self.timeout:g} s") from None
            finally:
                self._waiting -= 1
        else:
            await self._slots.acquire()
        self._settle()
        try:
            yield
        finally:
            self._slots.release()

    def refusing(self, reason: str) -> None:
        now = time.monotonic()
        self._last_refusal = now
        self.refused += 1
        if self._shedding_since is None:
            self._shedding_since, self.refused = now, 1
            log.warning("overloaded (%s): answering 503 with Retry-After to what does not fit",
                        reason)

    def _settle(self) -> None:
        if (self._shedding_since is not None
                and time.monotonic() - self._last_refusal >= self._quiet_after):
            log.warning("load back to normal after %.1f s; %d request(s) were answered 503",
                        self._last_refusal - self._shedding_since, self.refused)
            self._shedding_since = None


class Outages:
    """The middleware and its state, one per app (made by ``create_app``)."""

    def __init__(self, config: ServerConfig, pool_capacity: int) -> None:
        self.retry_after = config.retry_after_seconds
        self.database = DatabaseWatch(quiet=config.retry_after_seconds)
        self.queue = RequestQueue(pool_capacity, config.max_waiting_requests,
                                  config.queue_timeout_seconds, config.retry_after_seconds)

    async def watching(self, app: web.Application) -> AsyncIterator[None]:
        """Cleanup context, after the engine exists: every successful statement is news."""
        engine = app[engine_key].sync_engine
        event.listen(engine, "after_cursor_execute", self.database.answered)
        yield
        event.remove(engine, "after_cursor_execute", self.database.answered)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if request.path.startswith(UNQUEUED):
                return await handler(request)
            if _small_body(request):
                await request.read()  # kept by aiohttp: a slow sender holds no slot
            async with self.queue.slot():
                return await handler(request)
        except Overloaded as exc:
            self.queue.refusing(exc.reason)
            return self._unavailable(request, BUSY)
        except web.HTTPException:
            raise
        except ProblemError as exc:  # e.g. the health check's own 503
            found = classify(exc)
            if exc.status == 503 and found:
                self._note(*found)
                exc.headers.setdefault("Retry-After", str(self.retry_after))
            raise
        except Exception as exc:
            found = classify(exc)
            if not found:
                raise
            self._note(*found)
            if request.writer.output_size:  # a stream already under way: it can only end
                raise
            return self._unavailable(request, found[0])

    def _note(self, kind: str, reason: str) -> None:
        if kind == DOWN:
            self.database.failed(reason)
        else:
            self.queue.refusing(reason)

    def _unavailable(self, request: web.Request, kind: str) -> web.Response:
        headers = {"Retry-After": str(self.retry_after)}
        if request.path.startswith("/api/"):
            if kind == DOWN:
                return problem_response(503, "database-unavailable", "Database unavailable",
                                        "the database cannot be reached; retry later",
                                        headers=headers)
            return problem_response(503, "overloaded", "Server busy",
                                    "too many requests at once; retry later", headers=headers)
        words = ("The database is not answering" if kind == DOWN else "The server is busy")
        page = (f"<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">"
                f"<title>503 Service Unavailable</title><h1>503 Service Unavailable</h1>"
                f"<p>{words}. Try again in {self.retry_after} seconds; nothing was changed.</p>"
                f"<p dir=\"rtl\" lang=\"ar\">الخدمة غير متاحة مؤقتًا. حاول مرة أخرى بعد "
                f"{self.retry_after} ثوانٍ؛ لم يتغير شيء.</p></html>")
        return web.Response(status=503, text=page, content_type="text/html", headers=headers)
