"""One SQLite writer at a time, across coroutines and server processes, without polling.

SQLite's busy handler waits for the write lock by sleeping 1, 2, 5, 10 … 100 ms between tries,
so a writer queued behind a 50 ms sales push wakes up to tens of milliseconds after the lock is
free. Server writers therefore queue on an :class:`asyncio.Lock` within a process and on an
``flock`` of a file beside the database across processes: the kernel hands the lock to the
next process the moment it is released, and its ``BEGIN IMMEDIATE`` then finds the database
free. Other programs on the same file (the CLI) still wait through ``busy_timeout``.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path
from types import TracebackType


class WriterLock:
    """``async with lock:`` around a write transaction; the file is created on first use."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".writer-lock")
        self._local = asyncio.Lock()
        self._fd: int | None = None

    async def __aenter__(self) -> None:
        await self._local.acquire()
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except BaseException:
                self._local.release()
                raise
        fd = self._fd
        taking = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX))
        try:
            await asyncio.shield(taking)
        except asyncio.CancelledError:
            # The thread may still get the lock: give it back then, and only then let the
            # next coroutine in, so holding the local lock always means holding the file.
            taking.add_done_callback(lambda done: self._release(fd, done.exception() is None))
            raise
        except BaseException:
            self._local.release()
            raise

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        assert self._fd is not None
        self._release(self._fd, locked=True)

    def _release(self, fd: int, locked: bool) -> None:
        try:
            if locked:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._local.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
