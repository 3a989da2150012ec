"""The one-time set-password page, ``/admin/password/reset/{token}``: works without a session.

The token in the address is the credential (256 random bits, only its SHA-256 stored), so the
form needs no other CSRF token: a page elsewhere cannot post to a link it does not know, and a
foreign ``Origin`` is refused anyway. A link that was used, expired, voided by a newer one, or
whose user was deactivated answers 410 with a page saying so; a token never made answers 404;
either way nothing changes. The access log shows the path with the token cut off
(``access_log.loggable_target``). Guessing is hopeless at 256 bits, but an address that tries
``UNKNOWN_PER_MINUTE`` tokens never made within a minute waits (429), counted in the database
like failed enrollments, so every worker and host shares the count.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from .. import staff
from ..i18n import _
from ..ratelimit import FailureLimiter
from ..records import MIN_PASSWORD_LENGTH, RecordError
from ..staff import StaffUser
from ..transactions import reading, writing
from . import auditlog, lockout
from .render import redirect, render

routes = web.RouteTableDef()
PREFIX = "/admin/password/reset/"
UNKNOWN_PER_MINUTE = 10
_LIMITER = FailureLimiter(UNKNOWN_PER_MINUTE)


def _gone(request: web.Request, state: str) -> web.Response:
    status = {"unknown": 404, "limited": 429}.get(state, 410)
    return render(request, "password_link.html", {"state": state, "user": None,
                                                  "error": None,
                                                  "min_length": MIN_PASSWORD_LENGTH}, status=status)


async def _look_up(request: web.Request) -> tuple[str, StaffUser | None]:
    """The link's state, after the address's limit on tokens never made; such a token counts
    against it."""
    address = "pwlink:" + lockout.address_key(request.remote)
    async with reading(request.app) as conn:
        if await _LIMITER.retry_after(conn, address):
            return "limited", None
        state, user = await staff.link_user(conn, request.match_info["token"])
    if state == "unknown":
        async with writing(request.app) as conn:
            await _LIMITER.fail(conn, address)
    return state, user


@routes.get(PREFIX + "{token}")
async def link_page(request: web.Request) -> web.StreamResponse:
    state, user = await _look_up(request)
    if user is None:
        return _gone(request, state)
    return render(request, "password_link.html", {"state": state, "user": user,
                                                  "error": None,
                                                  "min_length": MIN_PASSWORD_LENGTH})


@routes.post(PREFIX + "{token}")
async def set_password(request: web.Request) -> web.StreamResponse:
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        raise web.HTTPForbidden(text=_("cross-site request refused"))
    token = request.match_info["token"]
    state, user = await _look_up(request)
    if user is None:
        return _gone(request, state)
    form = await request.post()
    password, again = form.get("password"), form.get("password_again")
    if not isinstance(password, str) or password != again:
        return _retry(request, user, _("The two passwords differ."))
    try:
        password_hash = await staff.hashed(password)
    except RecordError as exc:
        return _retry(request, user, str(exc))
    async with writing(request.app) as conn:
        done = await staff.use_link(conn, token, password_hash)
        if done is not None:
            await auditlog.record(conn, request, "password_set_by_link",
                                  school_id=done.school_id, target_type="admin_user",
                                  target_id=done.user_id, actor_email=done.email,
                                  note="all sessions of the user ended")
    if done is None:  # used or voided meanwhile
        return _gone(request, "gone")
    return redirect("/admin/login", _("Password set. Sign in with it now."))


def _retry(request: web.Request, user: StaffUser, error: str) -> web.Response:
    return render(request, "password_link.html", {"state": "ok", "user": user,
                                                  "error": error,
                                                  "min_length": MIN_PASSWORD_LENGTH}, status=400)
