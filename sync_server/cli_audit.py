"""Audit rows for the command-line actions that change data.

``create-school``, ``create-admin``, ``enrollment-code``, ``revoke-device`` and ``restore`` are
run by someone at the server's shell, with no console session: their rows say actor_id
``cli`` and actor_email ``cli:<OS user>`` (``client`` stays empty, as for jobs), so the audit
log answers "who did this" for them as it does for console actions. Written in the command's
own transaction, like every audit row (a restore writes it into the restored database, after
loading it).
"""

from __future__ import annotations

import getpass
import os
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from .admin.auditlog import record as _record

ACTOR_ID = "cli"


def os_user() -> str:
    """Who ran the command: the login name, or the numeric user ID where there is none (a
    container's user without a passwd entry)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def actor_email() -> str:
    return f"cli:{os_user()}"


async def record(conn: AsyncConnection, action: str, *, school_id: str | None,
                 target_type: str, target_id: str | None = None,
                 before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
                 note: str | None = None) -> None:
    await _record(conn, None, action, school_id=school_id, target_type=target_type,
                  target_id=target_id, before=before, after=after, note=note,
                  actor_email=actor_email(), actor_id=ACTOR_ID)
