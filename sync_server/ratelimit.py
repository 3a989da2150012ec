"""Counting failed device enrollments per client address in a sliding window, in the database.

Each failure is a row of ``enroll_failures``, so every worker process and host counts the same
failures: ``enroll_failures_per_minute`` is the allowance of one address whatever the number
of processes behind the balancer (it was per process, in memory, until migration 0008). That
is enough to make guessing a 59-bit enrollment code hopeless from one address. Addresses are
counted as the admin login lockout counts them (:func:`sync_server.admin.lockout.address_key`:
an IPv6 address by its /64); the caller passes the key.

The count and the insert are not one atomic step: processes racing may each let one more
failure through, which changes nothing about what guessing can achieve. Every failure also
deletes up to ``PRUNE_BATCH`` rows that have left the window (an indexed range on ``at``), so
the table holds little more than the last window's failures and no sweeper job is needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow

from .storage.schema import enroll_failures

# Each failure adds one row and may delete this many expired ones: pruning always keeps up,
# and no single failure pays for a backlog (after a long attack, say) in one statement.
PRUNE_BATCH = 100

_f = enroll_failures.c


class FailureLimiter:
    """The limit and window; the counts are in the database, so one instance per app."""

    def __init__(self, limit: int, window: timedelta = timedelta(seconds=60),
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.limit, self.window, self._clock = limit, window, clock

    async def retry_after(self, conn: AsyncConnection, address: str) -> int | None:
        """Seconds ``address`` must wait when it has used up its failures, else None: until
        the ``limit``-th most recent failure in the window leaves it."""
        now = self._clock()
        nth_latest: datetime | None = (await conn.execute(
            sa.select(_f.at).where(_f.address == address[:64], _f.at > now - self.window)
            .order_by(_f.at.desc()).offset(self.limit - 1).limit(1))).scalar_one_or_none()
        if nth_latest is None:
            return None
        return max(1, math.ceil((nth_latest + self.window - now).total_seconds()))

    async def fail(self, conn: AsyncConnection, address: str) -> None:
        """Count one failure of ``address`` (in the caller's write transaction)."""
        now = self._clock()
        await conn.execute(sa.insert(enroll_failures).values(address=address[:64], at=now))
        expired = (sa.select(_f.failure_id).where(_f.at <= now - self.window)
                   .order_by(_f.at).limit(PRUNE_BATCH))
        await conn.execute(sa.delete(enroll_failures).where(_f.failure_id.in_(expired)))
