"""Writing the audit log: one row per admin action, in the action's own transaction.

Written in the same transaction as the change it describes, so there is never a change without
its audit row, nor an audit row for a change that rolled back. Secrets never enter it: callers
pass descriptions ("PIN reset"), never PINs or passwords.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow

from ..storage.schema import audit_log
from .scope import Admin, admin_key


async def record(conn: AsyncConnection, request: web.Request | None, action: str, *,
                 school_id: str | None, target_type: str | None = None,
                 target_id: str | None = None, before: dict[str, Any] | None = None,
                 after: dict[str, Any] | None = None, note: str | None = None,
                 admin: Admin | None = None, actor_email: str | None = None,
                 actor_id: str | None = None) -> None:
    """``actor_id``/``actor_email`` name an actor that is not a console session (the command
    line: ``cli_audit.py``; a user setting a password through a link)."""
    if admin is None and request is not None:
        admin = request.get(admin_key)
    await conn.execute(sa.insert(audit_log).values(
        school_id=school_id, at=utcnow(),
        actor_id=admin.user_id if admin else actor_id,
        actor_email=(admin.email if admin else actor_email or None),
        action=action, target_type=target_type, target_id=target_id,
        before=_jsonable(before), after=_jsonable(after),
        note=note[:1000] if note else None,
        client=(request.remote or "")[:64] if request is not None else None))


def _jsonable(data: dict[str, Any] | None) -> dict[str, Any] | None:
    if data is None:
        return None
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in data.items()}
