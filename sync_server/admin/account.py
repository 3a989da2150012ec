"""A signed-in user changes their own password (every role, viewers included).

The current password is asked for, so a session left open on a shared PC cannot take the
account over; wrong answers count in the login lockout (``lockout.py``) like failed sign-ins,
so an open session is no way around it. The user's other sessions end; this one stays.
"""

from __future__ import annotations

import sqlalchemy as sa
from aiohttp import web

from shared.clock import utcnow

from .. import staff
from ..i18n import _
from ..records import MIN_PASSWORD_LENGTH, RecordError
from ..secrets import off_loop, verify_password
from ..storage.schema import admin_users
from ..transactions import reading, writing
from . import auditlog, lockout
from .render import redirect, render
from .scope import admin_of

routes = web.RouteTableDef()
PAGE = "/admin/account/password"


@routes.get(PAGE)
async def password_page(request: web.Request) -> web.StreamResponse:
    return render(request, "account_password.html", {"min_length": MIN_PASSWORD_LENGTH})


@routes.post(PAGE)
async def change_password(request: web.Request) -> web.StreamResponse:
    admin = admin_of(request)
    form = await request.post()
    current, new, again = (form.get(k) for k in ("current", "password", "password_again"))
    if not (isinstance(current, str) and isinstance(new, str)) or new != again:
        return redirect(PAGE, _("Not changed: %(why)s.", why=_("the two new passwords differ")),
                        error=True)
    address = lockout.address_key(request.remote)
    async with reading(request.app) as conn:
        wait = await lockout.retry_after(conn, admin.user_id, address, utcnow())
        stored = (await conn.execute(sa.select(admin_users.c.password_hash).where(
            admin_users.c.user_id == admin.user_id))).scalar_one()
    if wait:
        return redirect(PAGE, _("Too many failed attempts. Try again in %(wait)s s.",
                                wait=wait), error=True)
    if not await off_loop(verify_password, stored, current[:1000]):
        async with writing(request.app) as conn:
            await lockout.record(conn, admin.user_id, address, utcnow(), succeeded=False)
            await auditlog.record(conn, request, "password_change_failed",
                                  school_id=admin.home_school, target_type="admin_user",
                                  target_id=admin.user_id)
        return redirect(PAGE, _("Not changed: %(why)s.",
                                why=_("the current password is not right")), error=True)
    try:
        password_hash = await staff.hashed(new)
    except RecordError as exc:
        return redirect(PAGE, _("Not changed: %(why)s.", why=exc), error=True)
    async with writing(request.app) as conn:
        await staff.set_password(conn, admin.user_id, password_hash,
                                 keep_session=admin.session_hash)
        await auditlog.record(conn, request, "password_changed", school_id=admin.home_school,
                              target_type="admin_user", target_id=admin.user_id,
                              note="the user's other sessions ended")
    return redirect(PAGE, _("Password changed; your other sessions have ended."))
