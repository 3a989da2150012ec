"""One hub per process between "school S may have changed" and the event streams of S.

Wakes come from anywhere (PostgreSQL's NOTIFY, the SQLite counter watch, a periodic
re-check, a stream that just opened) and say only *which* school to look at. The hub gathers
the wakes of a short window and then reads once for all of them: each school's snapshot
version, and which of the devices holding a stream here are no longer active. So a burst of
changes costs one read per window however many streams a school has, a stream is told a
version only when it differs from the last one it sent (several changes coalesce into one
event), and a revoked device's stream ends at the next read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..storage.schema import devices, schools

log = logging.getLogger(__name__)

# Wakes within this window share one read, so one change reaches the streams in well under
# a second and a few changes committed together give one event.
COALESCE_SECONDS = 0.075
# A longer burst (a parent portal crediting 20 wallets one transaction after another) is read
# at most this often, so a till is told to pull at most four times a second however long the
# burst lasts, and the last read always follows the last change.
MIN_READ_GAP_SECONDS = 0.25
# Schools per query: asyncpg takes at most 32,767 parameters a statement.
SCHOOLS_PER_READ = 1000
# Retried after a failed read (database restarting): the streams stay open meanwhile.
RETRY_SECONDS = 2.0


class StreamEnded(Exception):
    """The stream must close: its device was revoked, or the server is shutting down."""


@dataclass(eq=False)
class Stream:
    """One open event stream: what it last sent and what it should send next."""

    device_id: str
    school_id: str
    sent: str | None = None          # the version this stream last sent
    latest: str | None = None        # the newest version the hub read for its school
    ended: bool = False
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, version: str) -> None:
        self.latest = version
        if version != self.sent:
            self._changed.set()

    def end(self) -> None:
        self.ended = True
        self._changed.set()

    async def next(self, quiet_seconds: float) -> str | None:
        """The version to send now, or None when ``quiet_seconds`` passed without a change (time
        for a ping); raises :class:`StreamEnded` when the stream must close."""
        while True:
            if self.ended:
                raise StreamEnded
            if self.latest is not None and self.latest != self.sent:
                self.sent = self.latest
                return self.sent
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), quiet_seconds)
            except TimeoutError:
                if self.ended:
                    raise StreamEnded from None
                return None


def version_text(epoch: str, version: int) -> str:
    """The opaque version a stream sends. The epoch changes when a database is restored, so a
    restored server at the same counter still tells its terminals to pull."""
    return f"{epoch}.{version}"


class ChangeHub:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._streams: dict[str, set[Stream]] = {}
        self._due: set[str] = set()
        self._woken = asyncio.Event()
        self._closed = False
        self.reads = 0  # database reads made, for tests and the benchmark

    # -- streams ------------------------------------------------------------------------
    @contextmanager
    def subscribe(self, device_id: str, school_id: str) -> Iterator[Stream]:
        """A stream for the device while the block runs. It is read for at once, so its first
        event carries the current version."""
        if self._closed:
            raise StreamEnded
        stream = Stream(device_id, school_id)
        self._streams.setdefault(school_id, set()).add(stream)
        self.wake(school_id)
        try:
            yield stream
        finally:
            group = self._streams.get(school_id)
            if group is not None:
                group.discard(stream)
                if not group:
                    del self._streams[school_id]

    @property
    def open_streams(self) -> int:
        return sum(len(group) for group in self._streams.values())

    def schools(self) -> list[str]:
        """Schools with a stream open in this process."""
        return list(self._streams)

    # -- wakes ----------------------------------------------------------------------------
    def wake(self, school_id: str) -> None:
        """School ``school_id`` may have changed (ignored when no stream here is of it)."""
        if school_id in self._streams:
            self._due.add(school_id)
            self._woken.set()

    def wake_all(self) -> None:
        """Something may have been missed (a listener reconnected, a periodic check)."""
        for school_id in self._streams:
            self.wake(school_id)

    def end_all(self) -> None:
        """Shutdown: every stream ends now, and none opens any more."""
        self._closed = True
        for group in self._streams.values():
            for stream in group:
                stream.end()

    async def run(self) -> None:
        """Reads for woken schools until cancelled."""
        loop = asyncio.get_running_loop()
        last_read = -MIN_READ_GAP_SECONDS
        while True:
            await self._woken.wait()
            await asyncio.sleep(max(COALESCE_SECONDS,
                                    last_read + MIN_READ_GAP_SECONDS - loop.time()))
            self._woken.clear()
            last_read = loop.time()
            due, self._due = self._due, set()
            due &= set(self._streams)
            if not due:
                continue
            try:
                ordered = sorted(due)
                for start in range(0, len(ordered), SCHOOLS_PER_READ):
                    await self._read(ordered[start:start + SCHOOLS_PER_READ])
            except Exception as exc:  # database away: keep the streams, look again soon
                log.warning("event streams: reading school versions failed (%s); retrying",
                            type(exc).__name__)
                self._due |= due
                await asyncio.sleep(RETRY_SECONDS)
                self._woken.set()

    async def _read(self, school_ids: list[str]) -> None:
        """Versions of ``school_ids`` and their devices that are not active (revoked devices
        are few per school, and the index on school_id finds them)."""
        async with self._engine.connect() as conn:
            conn = await conn.execution_options(readonly=True)
            async with conn.begin():
                versions = {row.school_id: version_text(row.snapshot_epoch, int(row.version))
                            for row in await conn.execute(
                                sa.select(schools.c.school_id, schools.c.snapshot_epoch,
                                          schools.c.version)
                                .where(schools.c.school_id.in_(school_ids)))}
                inactive = set((await conn.execute(
                    sa.select(devices.c.device_id)
                    .where(devices.c.school_id.in_(school_ids),
                           devices.c.status != "active"))).scalars())
        self.reads += 1
        for school_id in school_ids:
            version = versions.get(school_id)
            for stream in list(self._streams.get(school_id, ())):
                if stream.device_id in inactive or version is None:
                    stream.end()
                else:
                    stream.offer(version)
