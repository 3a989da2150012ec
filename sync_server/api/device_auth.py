"""Bearer-token authentication of terminals: one indexed lookup of the token's hash."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from aiohttp import web

from ..logs import device_id_key
from ..secrets import token_hash
from ..storage.schema import devices
from ..transactions import reading
from .problems import ProblemError


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    school_id: str


async def authenticate(request: web.Request) -> Device:
    """401 for a missing or unknown token, 403 ``device-revoked`` for a revoked device."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ProblemError(401, "unauthenticated", "Device token required",
                           "send Authorization: Bearer <device_token>",
                           headers={"WWW-Authenticate": "Bearer"})
    async with reading(request.app) as conn:
        row = (await conn.execute(
            sa.select(devices.c.device_id, devices.c.school_id, devices.c.status)
            .where(devices.c.token_hash == token_hash(token.strip())))).first()
    if row is None:
        raise ProblemError(401, "unauthenticated", "Unknown device token",
                           "enroll this terminal again", headers={"WWW-Authenticate": "Bearer"})
    request[device_id_key] = row.device_id  # for the access log (sync_server/logs.py)
    if row.status != "active":
        raise revoked()
    return Device(row.device_id, row.school_id)


def revoked() -> ProblemError:
    return ProblemError(403, "device-revoked", "Device revoked",
                        "an administrator revoked this terminal; its queue is kept")
