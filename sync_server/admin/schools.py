"""The platform admin's school picker (school roles never see it)."""

from __future__ import annotations

import sqlalchemy as sa
from aiohttp import web

from ..i18n import _
from ..storage.schema import admin_sessions, schools
from ..transactions import reading, writing
from .render import redirect, render
from .scope import admin_of

routes = web.RouteTableDef()


@routes.get("/admin/schools")
async def school_list(request: web.Request) -> web.StreamResponse:
    admin = admin_of(request)
    if not admin.is_platform:
        raise web.HTTPForbidden(text=_("only platform admins pick a school"))
    async with reading(request.app) as conn:
        rows = (await conn.execute(sa.select(schools.c.school_id, schools.c.name,
                                             schools.c.currency, schools.c.timezone)
                                   .order_by(schools.c.name))).all()
    return render(request, "schools.html", {"schools": rows})


@routes.post("/admin/schools/select")
async def select_school(request: web.Request) -> web.StreamResponse:
    admin = admin_of(request)
    if not admin.is_platform:
        raise web.HTTPForbidden(text=_("only platform admins pick a school"))
    form = await request.post()
    school_id = str(form.get("school_id", ""))
    async with writing(request.app) as conn:
        exists = (await conn.execute(sa.select(schools.c.school_id)
                                     .where(schools.c.school_id == school_id))).first()
        if exists is None:
            raise web.HTTPNotFound(text=_("no such school"))
        await conn.execute(sa.update(admin_sessions)
                           .where(admin_sessions.c.session_hash == admin.session_hash)
                           .values(school_id=school_id))
    return redirect("/admin/")
