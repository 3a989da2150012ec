"""Who is asking, for which school, and may they do it.

Every page and action goes through :func:`school_of`, and every query a page runs is filtered
by the school it returns; a row of another school is simply "not found" (404), whatever ID is
typed into a URL or a form. School roles always get their own school; a platform admin gets
the school picked for the session and is sent to the picker until there is one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from ..i18n import _
from ..storage.schema import schools

PLATFORM_ADMIN = "platform_admin"
SCHOOL_ADMIN = "school_admin"
SCHOOL_MANAGER = "school_manager"  # issues bracelets and records delivery; sees sales
SCHOOL_VIEWER = "school_viewer"
ROLES = (PLATFORM_ADMIN, SCHOOL_ADMIN, SCHOOL_MANAGER, SCHOOL_VIEWER)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Admin:
    user_id: str
    email: str
    name: str
    role: str
    home_school: str | None      # the user's own school (None for platform admins)
    picked_school: str | None    # the session's pick (platform admins only)
    csrf_token: str
    session_hash: str
    language: str | None = None  # the console language the admin chose (None: not yet)

    @property
    def school_id(self) -> str | None:
        return self.picked_school if self.role == PLATFORM_ADMIN else self.home_school

    @property
    def can_write(self) -> bool:
        return self.role in (PLATFORM_ADMIN, SCHOOL_ADMIN)

    @property
    def can_issue(self) -> bool:
        """Assign bracelets and record their delivery: admins and school managers."""
        return self.role in (PLATFORM_ADMIN, SCHOOL_ADMIN, SCHOOL_MANAGER)

    @property
    def sees_full_uids(self) -> bool:
        """Viewers see bracelet UIDs masked: a UID is what a copied bracelet needs."""
        return self.role != SCHOOL_VIEWER

    @property
    def is_platform(self) -> bool:
        return self.role == PLATFORM_ADMIN


@dataclass(frozen=True, slots=True)
class School:
    school_id: str
    name: str
    currency: str
    timezone: str


admin_key = web.RequestKey("admin", Admin)
school_key = web.RequestKey("school", School)


def admin_of(request: web.Request) -> Admin:
    return request[admin_key]


def school_of(request: web.Request) -> School:
    """The school this request works on (loaded by the middleware), or off to the picker."""
    if school_key not in request:
        raise web.HTTPSeeOther("/admin/schools")
    return request[school_key]


def require_write(request: web.Request) -> None:
    """Refuse read-only roles (403) before anything is read from the form or the database."""
    if not admin_of(request).can_write:
        raise web.HTTPForbidden(text=_("read-only role"))


def require_issue(request: web.Request) -> None:
    """Bracelet issuing and delivery: admins and school managers; viewers are refused (403)."""
    if not admin_of(request).can_issue:
        raise web.HTTPForbidden(text=_("not allowed for this role"))


def require_admin_role(request: web.Request) -> None:
    """Pages for admins only (the audit log): viewers are refused."""
    if not admin_of(request).can_write:
        raise web.HTTPForbidden(text=_("admins only"))


async def load_school(conn: AsyncConnection, school_id: str) -> School | None:
    row = (await conn.execute(
        sa.select(schools.c.school_id, schools.c.name, schools.c.currency, schools.c.timezone)
        .where(schools.c.school_id == school_id))).first()
    return School(row.school_id, row.name, row.currency, row.timezone) if row else None


def found(row: T | None) -> T:
    """The row, or 404 when it is missing *or belongs to another school* (queries filter by
    school)."""
    if row is None:
        raise web.HTTPNotFound(text=_("not found in this school"))
    return row
