"""The roster import's ``bracelet_uid`` column: may this student get that bracelet, and give it.

The refusal is decided before the row changes anything (a new student is not created for a
bracelet that cannot be theirs), with the inventory's own rules (:mod:`sync_server.
bracelet_inventory`, which checks them again when it gives the bracelet): a UID active on
another wallet, in this school or any other, or blocked or retired here, is the row's error.
Each bracelet given gets an audit row noting the file's line, as one assigned on the wallet
page does.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from .. import bracelet_inventory, records
from ..i18n import _
from ..storage.schema import credentials
from . import auditlog
from .scope import School, admin_key


async def problem(conn: AsyncConnection, school_id: str, current: Any,
                  uid: str) -> str | None:
    """Why ``uid`` cannot go to this row's student, read before the row changes anything
    (the inventory's own checks run again when it is given): active on another wallet in
    this school or any other, or blocked or retired here. None when it may be given, or is
    already this student's."""
    wallet_id = current.wallet_id if current is not None else None
    held = (await conn.execute(sa.select(credentials.c.wallet_id, credentials.c.status).where(
        credentials.c.school_id == school_id, credentials.c.uid == uid))).first()
    if held is not None and held.status == "active":
        return None if held.wallet_id == wallet_id else _(
            "this bracelet is active on another student; block it first")
    item = await bracelet_inventory.bracelet_of(conn, school_id, uid)
    if (held is not None and held.status == "blocked") or (
            item is not None and item.state in ("blocked", "retired")):
        return _("this bracelet was blocked; a blocked bracelet is not given out again")
    if item is not None and item.state != "in_stock":
        return _("this bracelet is %(state)s", state=item.state)
    if await bracelet_inventory.active_elsewhere(conn, school_id, uid):
        return _("this bracelet is active in another school")
    return None


async def give(conn: AsyncConnection, request: web.Request, school: School, wallet_id: str,
               uid: str | None, line: int) -> list[str]:
    """Give the row's bracelet (checked by :func:`problem`); what the report says."""
    if not uid:
        return []
    admin = request.get(admin_key)
    try:
        await records.assign_credential(conn, school.school_id, wallet_id, uid,
                                        actor=admin.user_id if admin else None,
                                        note=f"roster import, line {line}")
    except records.AlreadyAssigned:
        return []
    await auditlog.record(conn, request, "bracelet_assigned", school_id=school.school_id,
                          target_type="bracelet", target_id=uid,
                          after={"wallet_id": wallet_id},
                          note=f"roster import, line {line}")
    return [_("bracelet assigned")]
