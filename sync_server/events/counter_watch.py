"""SQLite: the school change counter is the only thing every process can see.

SQLite has no notifications between processes, and ``pos-server serve --workers 2`` (or a CLI
command, or a second server on the same file) commits changes this process never hears of.
So while streams are open here, every ``events_watch_seconds`` the hub reads the counters of
the schools with streams (one small read for all of them, never a write) and wakes the streams
whose school moved. With no stream open, nothing is read.

On PostgreSQL the same loop runs as the slow safety re-check of :mod:`.pg_listener`.
"""

from __future__ import annotations

import asyncio

from .hub import ChangeHub


async def watch(hub: ChangeHub, every_seconds: float) -> None:
    """Wake every school with streams here, every ``every_seconds``, until cancelled."""
    while True:
        await asyncio.sleep(every_seconds)
        hub.wake_all()
