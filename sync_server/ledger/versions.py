"""The school change counter behind snapshot cursors, and the announcement of its changes.

A transaction that changes rows terminals mirror calls :func:`bump` after its reads and
before its writes: the UPDATE takes the school row's lock until commit, so versions become
visible in the order they were handed out and a cursor can never skip a change that commits
late. Taking it after the reads keeps that lock short (a sales batch holds it for its writes
and commit, not while judging), and it is always the last lock taken (device, wallets, school).

Every bump is also announced to the event streams (:mod:`sync_server.events`): on PostgreSQL
with ``pg_notify`` in the same transaction, which the database delivers at commit (never for
a rollback) to every server process on every host. SQLite has no such channel; there the
streams read the counter itself.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..storage.schema import schools

# The LISTEN/NOTIFY channel of sync_server/events/pg_listener.py; its payload is a school_id.
CHANNEL = "pos_changes"


async def bump(conn: AsyncConnection, school_id: str) -> int:
    """The school's next version, announced. On PostgreSQL the notification is queued by the
    same statement (``pg_notify`` in its RETURNING): every sales push bumps, and a statement
    is a round trip."""
    returning: list[sa.ColumnElement[Any]] = [schools.c.version]
    if conn.dialect.name == "postgresql":
        returning.append(sa.func.pg_notify(CHANNEL, school_id))
    result = await conn.execute(
        sa.update(schools)
        .where(schools.c.school_id == school_id)
        .values(version=schools.c.version + 1)
        .returning(*returning)
    )
    return int(result.one()[0])


async def announce(conn: AsyncConnection, school_id: str) -> None:
    """Wake the event streams of ``school_id`` when this transaction commits, for changes
    that do not bump the counter but end or alter streams (a device revoked). PostgreSQL
    sends one notification per transaction however often this runs in it."""
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.select(sa.func.pg_notify(CHANNEL, school_id)))
