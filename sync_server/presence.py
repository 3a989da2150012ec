"""When each terminal was last heard from, kept in memory and written in batches.

An idle till polls for a snapshot delta and pushes an empty batch every cycle, and a stream
pings; writing ``devices.last_seen_at`` on each of those made a school of idle terminals a
steady stream of write transactions (on SQLite, each one the database's single write lock).
:meth:`Presence.seen` only notes the time in this process's memory; a background task writes
everything noted since the last flush every ``presence_flush_seconds`` in ONE statement
(an executemany UPDATE), and the app's cleanup flushes once more on shutdown.

Several processes and hosts flush the same devices in any order, so a flush only ever moves
``last_seen_at`` forward (its WHERE keeps a stored later time), and the app version goes with
the time it was seen at. Because contacts wait in memory, the console's "last contact" lags
by up to one flush interval, and a process killed without its shutdown flush loses at most
that interval's contacts, which the terminal's next poll records again. The memory is one
entry per terminal seen, and only authenticated terminals are noted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import utcnow

from .storage.schema import devices

log = logging.getLogger(__name__)

LOCK_CHUNK = 1000  # device IDs per locking SELECT (one bound parameter each)

_d = devices.c
# Bind names differ from the column names: SQLAlchemy reserves those in an UPDATE's SET.
_FLUSH = (
    sa.update(devices)
    .where(_d.device_id == sa.bindparam("b_device"),
           sa.or_(_d.last_seen_at.is_(None), _d.last_seen_at < sa.bindparam("b_at")))
    .values(last_seen_at=sa.bindparam("b_at"),
            app_version=sa.func.coalesce(sa.bindparam("b_version", type_=_d.app_version.type),
                                         _d.app_version))
)


class Presence:
    """Devices seen since the last flush: device ID -> (when, app version)."""

    def __init__(self, clock: Callable[[], datetime] = utcnow) -> None:
        self._clock = clock
        self._seen: dict[str, tuple[datetime, str | None]] = {}

    def seen(self, device_id: str, app_version: str | None) -> None:
        """Note a contact now; no I/O. A later contact of the same device replaces it (an
        unknown version keeps the one stored)."""
        self._seen[device_id] = (self._clock(), app_version)

    def __len__(self) -> int:
        return len(self._seen)

    async def flush(self, engine: AsyncEngine,
                    write_lock: AbstractAsyncContextManager[None] | None = None) -> int:
        """Write every contact noted since the last flush; returns how many devices.

        The pending contacts are taken before the write, so contacts noted while it runs wait
        for the next flush. If the write fails or is cancelled they are put back (a newer
        contact noted in the meantime wins), to be written by the next flush.

        On PostgreSQL the rows are locked first, in device order, skipping any another
        transaction holds: a push holds its device's row from its first statement to its
        commit, and a flush that waited for it held every row it had already updated, so
        every push of those devices queued behind the flush, and two processes' flushes,
        each in its own order, deadlocked (seen at 500 tills: one flush aborted, pushes
        stalled for seconds). A skipped contact is put back for the next flush."""
        if not self._seen:
            return 0
        batch, self._seen = self._seen, {}
        ids = sorted(batch)
        written: list[str] = []
        try:
            async with write_lock or nullcontext(), engine.begin() as conn:
                free = set(ids)
                if conn.dialect.name == "postgresql":
                    free = set()
                    for start in range(0, len(ids), LOCK_CHUNK):
                        free.update((await conn.execute(
                            sa.select(_d.device_id)
                            .where(_d.device_id.in_(ids[start:start + LOCK_CHUNK]))
                            .order_by(_d.device_id)
                            .with_for_update(skip_locked=True))).scalars())
                written = [device_id for device_id in ids if device_id in free]
                if written:
                    await conn.execute(_FLUSH, [
                        {"b_device": d, "b_at": batch[d][0], "b_version": batch[d][1]}
                        for d in written])
        except BaseException:
            for device_id, contact in batch.items():
                self._seen.setdefault(device_id, contact)
            raise
        for device_id in set(ids) - set(written):
            self._seen.setdefault(device_id, batch[device_id])
        return len(written)

    @asynccontextmanager
    async def flushing(self, every_s: float, engine: AsyncEngine,
                       write_lock: AbstractAsyncContextManager[None] | None = None,
                       ) -> AsyncIterator[None]:
        """Flush every ``every_s`` seconds while inside, and once more on leaving (the app's
        shutdown). A failed flush is logged and its contacts wait for the next one."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(every_s)
                try:
                    await self.flush(engine, write_lock)
                except Exception:  # the database is away: keep the contacts, try next time
                    log.warning("could not record %d terminals' last contact; retrying in "
                                "%s s", len(self), every_s, exc_info=True)

        task = asyncio.create_task(loop(), name="presence-flush")
        try:
            yield
        finally:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            try:
                await self.flush(engine, write_lock)
            except Exception:
                log.warning("could not record %d terminals' last contact on shutdown",
                            len(self), exc_info=True)
