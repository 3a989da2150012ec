"""The users page: a school's staff (and, for platform admins, the platform admins).

Who manages whom: a school admin manages the school roles of their own school; a platform
admin manages the users of the school picked for the session and, in the page's platform
section, the platform admins. Any other user is "not found" (404), whatever ID is typed.
Nobody deactivates or changes the role of themselves, and the rules of ``staff.py`` keep one
active admin per school and on the platform.

Creating a user or resetting a password makes a one-time set-password link: shown once, on
the page that answers the POST (never in a redirect, a log or the audit log), and emailed to
the user in their console language when the server has a mail server (``smtp_host``).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from .. import i18n, staff
from ..i18n import _
from ..keys import config_key
from ..mail.queue import enqueue
from ..records import RecordError
from ..staff import PLATFORM_ADMIN, SCHOOL_ROLES, StaffUser
from ..transactions import reading, writing
from . import auditlog
from .render import FormError, Refused, redirect, render, text
from .scope import Admin, admin_of, require_admin_role, require_write, school_key

routes = web.RouteTableDef()
LINK_PATH = "/admin/password/reset/"


def _school_id(request: web.Request) -> str | None:
    school = request.get(school_key)
    return school.school_id if school is not None else None


def _may_manage(admin: Admin, school_id: str | None, user: StaffUser) -> bool:
    if user.role == PLATFORM_ADMIN:
        return admin.is_platform
    return user.school_id is not None and user.school_id == school_id


async def _target(conn: AsyncConnection, request: web.Request) -> StaffUser:
    """The user in the path, or 404 when the admin may not manage them."""
    user = await staff.get_user(conn, request.match_info["user_id"][:64])
    if user is None or not _may_manage(admin_of(request), _school_id(request), user):
        raise web.HTTPNotFound(text=_("not found in this school"))
    return user


def _roles_for(admin: Admin, school_id: str | None) -> list[str]:
    """The roles this admin may give a new user."""
    roles = list(SCHOOL_ROLES) if school_id else []
    return [*roles, PLATFORM_ADMIN] if admin.is_platform else roles


@routes.get("/admin/users")
async def users_page(request: web.Request) -> web.StreamResponse:
    require_admin_role(request)
    admin = admin_of(request)
    school_id = _school_id(request)
    if school_id is None and not admin.is_platform:
        raise web.HTTPSeeOther("/admin/schools")
    async with reading(request.app) as conn:
        rows = await staff.list_users(conn, school_id) if school_id else []
        platform = await staff.list_users(conn, None) if admin.is_platform else []
    return render(request, "users.html", {"rows": rows, "platform": platform})


@routes.get("/admin/users/new")
async def new_user_page(request: web.Request) -> web.StreamResponse:
    require_admin_role(request)
    roles = _roles_for(admin_of(request), _school_id(request))
    if not roles:
        raise web.HTTPSeeOther("/admin/schools")
    return render(request, "user_new.html", {"roles": roles,
                                             "languages": i18n.LANGUAGE_NAMES})


@routes.get("/admin/users/{user_id}")
async def user_page(request: web.Request) -> web.StreamResponse:
    require_admin_role(request)
    async with reading(request.app) as conn:
        user = await _target(conn, request)
    return render(request, "user.html", {"user": user, "roles": SCHOOL_ROLES,
                                         "is_self": user.user_id == admin_of(request).user_id})


@routes.post("/admin/users")
async def create_user(request: web.Request) -> web.StreamResponse:
    require_write(request)
    admin = admin_of(request)
    form = await request.post()
    role = form.get("role")
    school_id = _school_id(request)
    if role not in _roles_for(admin, school_id):
        return redirect("/admin/users/new", _("Not created: %(why)s.",
                                               why=_("role not allowed")), error=True)
    assert isinstance(role, str)
    language = form.get("language")
    try:
        email = text(form, "email", max_len=320)
        name = text(form, "name", max_len=200, required=False)
    except FormError as exc:
        return redirect("/admin/users/new", _("Not created: %(why)s.", why=exc), error=True)
    unusable = await staff.unusable_hash()
    try:
        return await _create(request, email, name, role, language, school_id, unusable)
    except sa.exc.IntegrityError:  # the same email added by someone else at the same moment
        return redirect("/admin/users/new", _("Not created: %(why)s.", why=_(
            "a user with this email already exists")), error=True)


async def _create(request: web.Request, email: str, name: str, role: str, language: object,
                  school_id: str | None, unusable: str) -> web.StreamResponse:
    async with writing(request.app) as conn:
        try:
            user = await staff.create_user(
                conn, email=email, name=name, role=role, language=language
                if isinstance(language, str) and language in i18n.LANGUAGES else None,
                school_id=None if role == PLATFORM_ADMIN else school_id,
                unusable_hash=unusable)
        except RecordError as exc:
            raise Refused("/admin/users/new", _("Not created: %(why)s.", why=exc)) from None
        link, expires, mailed = await _make_link(conn, request, user)
        await auditlog.record(conn, request, "user_created", school_id=user.school_id,
                              target_type="admin_user", target_id=user.user_id,
                              after=user.described(), note=_link_note(mailed))
    return _link_page(request, user, link, expires, mailed, created=True)


@routes.post("/admin/users/{user_id}/role")
async def change_role(request: web.Request) -> web.StreamResponse:
    require_write(request)
    form = await request.post()
    back = f"/admin/users/{request.match_info['user_id']}"
    async with writing(request.app) as conn:
        user = await _target(conn, request)
        _not_self(request, user, back)
        role = form.get("role")
        try:
            changed = await staff.change_role(conn, user, role if isinstance(role, str) else "")
        except RecordError as exc:
            raise Refused(back, _("Not changed: %(why)s.", why=exc)) from None
        await auditlog.record(conn, request, "user_role_changed", school_id=user.school_id,
                              target_type="admin_user", target_id=user.user_id,
                              before={"role": user.role}, after={"role": changed.role})
    return redirect(back, _("Role changed."))


@routes.post("/admin/users/{user_id}/deactivate")
async def deactivate(request: web.Request) -> web.StreamResponse:
    return await _set_active(request, False)


@routes.post("/admin/users/{user_id}/reactivate")
async def reactivate(request: web.Request) -> web.StreamResponse:
    return await _set_active(request, True)


async def _set_active(request: web.Request, active: bool) -> web.StreamResponse:
    require_write(request)
    back = f"/admin/users/{request.match_info['user_id']}"
    async with writing(request.app) as conn:
        user = await _target(conn, request)
        _not_self(request, user, back)
        try:
            changed = await staff.set_active(conn, user, active)
        except RecordError as exc:
            raise Refused(back, _("Not changed: %(why)s.", why=exc)) from None
        await auditlog.record(conn, request,
                              "user_reactivated" if active else "user_deactivated",
                              school_id=user.school_id, target_type="admin_user",
                              target_id=user.user_id, before={"active": user.active},
                              after={"active": changed.active})
    return redirect(back, _("User reactivated.") if active else
                    _("User deactivated; their sessions have ended."))


@routes.post("/admin/users/{user_id}/reset")
async def reset_password(request: web.Request) -> web.StreamResponse:
    require_write(request)
    back = f"/admin/users/{request.match_info['user_id']}"
    async with writing(request.app) as conn:
        user = await _target(conn, request)
        try:
            link, expires, mailed = await _make_link(conn, request, user)
        except RecordError as exc:
            raise Refused(back, _("No link made: %(why)s.", why=exc)) from None
        await auditlog.record(conn, request, "password_reset_created",
                              school_id=user.school_id, target_type="admin_user",
                              target_id=user.user_id, note=_link_note(mailed))
    return _link_page(request, user, link, expires, mailed, created=False)


def _not_self(request: web.Request, user: StaffUser, back: str) -> None:
    if user.user_id == admin_of(request).user_id:
        raise Refused(back, _("You cannot deactivate yourself or change your own role."))


def _link_note(mailed: bool) -> str:
    """The audit row's note: how the link went out (never the link)."""
    return "set-password link shown to the admin" + (" and emailed" if mailed else "")


async def _make_link(conn: AsyncConnection, request: web.Request,
                     user: StaffUser) -> tuple[str, datetime, bool]:
    """The link, when it expires, and whether it was queued for email (``smtp_host`` set)."""
    config = request.app[config_key]
    token, expires = await staff.new_link(conn, user, created_by=admin_of(request).user_id,
                                          ttl=config.password_reset_ttl)
    link = f"{request.url.origin()}{LINK_PATH}{token}"
    if not config.smtp_host:
        return link, expires, False
    minutes = config.password_reset_ttl_minutes
    with i18n.language(user.language or i18n.DEFAULT_LANGUAGE):
        subject = _("Set your password for the cafeteria console")
        body = _("Hello %(name)s,\n\nOpen this link to set your password for the cafeteria "
                 "console. It works once, within %(minutes)d minutes:\n\n%(link)s\n\nIf you "
                 "did not expect this email, ignore it.\n", name=user.name, minutes=minutes,
                 link=link)
    await enqueue(conn, school_id=user.school_id, kind="password_reset",
                  to_address=user.email, subject=subject, body_text=body,
                  language=user.language)
    return link, expires, True


def _link_page(request: web.Request, user: StaffUser, link: str, expires: datetime,
               mailed: bool, *, created: bool) -> web.Response:
    return render(request, "user_link.html", {"user": user, "link": link, "expires": expires,
                                              "mailed": mailed, "created": created})
