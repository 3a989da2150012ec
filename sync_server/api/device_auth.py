"""Bearer-token authentication of terminals: one indexed lookup of the token's hash."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from ..keys import engine_key
from ..logs import device_id_key
from ..secrets import token_hash
from ..storage.engine import statement_reads
from ..storage.schema import devices, schools
from .problems import ProblemError


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    school_id: str
    school: Any = None  # the ``school_columns`` asked for, read with the token


async def authenticate(request: web.Request, conn: AsyncConnection | None = None,
                       school_columns: Sequence[sa.Column[Any]] = ()) -> Device:
    """401 for a missing or unknown token, 403 ``device-revoked`` for a revoked device.
    ``conn``: read there (the snapshot route's own transaction) instead of a connection of
    its own, so a pull checks out one pooled connection, not two. ``school_columns``: read
    from the device's school row in the same statement (a pull needs its version and
    settings), one round trip instead of two."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ProblemError(401, "unauthenticated", "Device token required",
                           "send Authorization: Bearer <device_token>",
                           headers={"WWW-Authenticate": "Bearer"})
    query = (sa.select(devices.c.device_id, devices.c.school_id, devices.c.status)
             .where(devices.c.token_hash == token_hash(token.strip())))
    if school_columns:
        query = query.add_columns(*school_columns).join(
            schools, schools.c.school_id == devices.c.school_id)
    if conn is not None:
        row = (await conn.execute(query)).first()
    else:
        async with statement_reads(request.app[engine_key]) as own:
            row = (await own.execute(query)).first()
    if row is None:
        raise ProblemError(401, "unauthenticated", "Unknown device token",
                           "enroll this terminal again", headers={"WWW-Authenticate": "Bearer"})
    request[device_id_key] = row.device_id  # for the access log (sync_server/logs.py)
    if row.status != "active":
        raise revoked()
    return Device(row.device_id, row.school_id, row if school_columns else None)


def revoked() -> ProblemError:
    return ProblemError(403, "device-revoked", "Device revoked",
                        "an administrator revoked this terminal; its queue is kept")
