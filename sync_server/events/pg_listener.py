"""PostgreSQL: changes committed by any process on any host wake this process's streams.

:func:`sync_server.ledger.versions.announce` runs ``pg_notify(CHANNEL, school_id)`` inside
each transaction that changes what terminals mirror; PostgreSQL delivers it at commit to every
connection listening on the channel, whichever host it is on. Each server process keeps one
connection of its own for that (a pooled connection would be handed to requests, and a
LISTEN must stay on one session).

Notifications sent while the connection is down are lost, so after every reconnect all
schools with streams here are read again. The connection is also pinged at each re-check: a
host whose network silently dropped it would otherwise wait forever for notifications.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import sqlalchemy as sa

from ..ledger.versions import CHANNEL
from .hub import ChangeHub

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0
PING_TIMEOUT_SECONDS = 10.0


def listener_dsn(db_url: str) -> str:
    """The server's ``postgresql://`` URL in the form asyncpg takes itself."""
    url = sa.make_url(db_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class ChangeListener:
    def __init__(self, hub: ChangeHub, db_url: str, check_seconds: float) -> None:
        self._hub, self._dsn, self._check = hub, listener_dsn(db_url), check_seconds
        self.connects = 0   # for tests: how often a connection was (re)made
        self.backend_pid: int | None = None

    async def run(self) -> None:
        """Listen until cancelled, reconnecting with backoff."""
        backoff = 0.5
        while True:
            connected_before = self.connects
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # refused, reset, timed out, terminated by an admin
                if self.connects > connected_before:
                    backoff = 0.5  # it was up: the next attempt need not wait long
                log.warning("event listener: PostgreSQL connection lost (%s); reconnecting in "
                            "%.1f s", type(exc).__name__, backoff)
            self.backend_pid = None
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def _listen_once(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(self._dsn, timeout=10)
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(CHANNEL, self._notified)
            self.connects += 1
            self.backend_pid = conn.get_server_pid()
            if self.connects > 1:
                log.info("event listener: reconnected to PostgreSQL")
            self._hub.wake_all()  # what was committed while nobody listened
            while not conn.is_closed():
                try:
                    await asyncio.wait_for(lost.wait(), self._check)
                except TimeoutError:
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), PING_TIMEOUT_SECONDS)
                    self._hub.wake_all()  # the slow safety re-check, in case a NOTIFY was lost
            raise ConnectionError("listener connection closed")
        finally:
            if not conn.is_closed():
                conn.terminate()

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self._hub.wake(payload)
