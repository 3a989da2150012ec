"""The school change counter behind snapshot cursors.

A transaction that changes rows terminals mirror calls :func:`bump` after its reads and
before its writes: the UPDATE takes the school row's lock until commit, so versions become
visible in the order they were handed out and a cursor can never skip a change that commits
late. Taking it after the reads keeps that lock short (a sales batch holds it for its writes
and commit, not while judging), and it is always the last lock taken (device, wallets, school).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..storage.schema import schools


async def bump(conn: AsyncConnection, school_id: str) -> int:
    result = await conn.execute(
        sa.update(schools)
        .where(schools.c.school_id == school_id)
        .values(version=schools.c.version + 1)
        .returning(schools.c.version)
    )
    return int(result.scalar_one())
