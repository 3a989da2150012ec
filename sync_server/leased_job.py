"""The loop both outboxes' jobs run: find what is due by a read, lease it, try it.

Webhook deliveries (:mod:`.notify.delivery`) and parent emails (:mod:`.mail.sender`) are rows
any process or host may send; what differs is how a row is found, leased, tried and
recorded, which each job gives as the four methods below. The loop itself (each due row at
most once per pass, a failure costing one log line and one interval, leases given back when
the job stops) is one piece, so both jobs keep the same guarantees.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Generic, TypeVar

C = TypeVar("C")  # a leased row, as the job holds it

log = logging.getLogger(__name__)


def one_line(exc: BaseException, limit: int) -> str:
    """An error as a row's ``last_error`` and a log line hold it: its type and first line."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"[:limit] if first else type(exc).__name__


class LeasedJob(Generic[C]):
    """:meth:`run_once` tries what is due now, :meth:`run_forever` keeps doing it."""

    what = "job"  # for the log line of a failed pass
    error_length = 300

    async def run_forever(self, interval: float) -> None:
        """Until cancelled; then the leases held are given back. A failure (the database
        down, a bug) costs one log line and one interval, never the loop."""
        try:
            while True:
                try:
                    await self.run_once()
                except Exception as exc:
                    log.warning("%s failed, trying again in %.0f s: %s", self.what, interval,
                                one_line(exc, self.error_length))
                await asyncio.sleep(interval)
        finally:
            await asyncio.shield(self._give_back())

    async def run_once(self) -> int:
        """Try every row due now (each at most once per call); how many this job tried
        (those another process claimed first are not counted)."""
        seen: set[str] = set()
        tried = 0
        while True:
            due = await self._due(exclude=seen)
            if not due:
                return tried
            claims = await self._claim(due)
            seen.update(due)
            tried += len(claims)
            if claims:
                await asyncio.gather(*(self._send(c) for c in claims))

    async def _due(self, exclude: set[str]) -> list[str]:
        raise NotImplementedError

    async def _claim(self, due: list[str]) -> list[C]:
        raise NotImplementedError

    async def _send(self, claim: C) -> None:
        raise NotImplementedError

    async def _give_back(self) -> None:
        raise NotImplementedError
