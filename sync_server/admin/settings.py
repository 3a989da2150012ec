"""School settings: the caps and overdraft limit terminals enforce.

``offline_max_sale`` keeps its historical column name but is the largest single sale, online
or offline: tills refuse a bigger sale either way and the server flags one that slipped
through (``sale_cap_exceeded``). The page labels it as it works.

These bound how much a school can lose while terminals sell offline (DESIGN.md: per-sale and
total offline caps, like Stripe Terminal and Square). A change goes through
:func:`records.update_settings`, so it reaches every terminal with the next snapshot delta.

The low-balance threshold is the server's alone (parents are emailed, and ``wallet.low_balance``
told, when a balance falls below it: ``mail/low_balance.py``); empty turns it off. A form
posted without the field (a script of the older page) leaves it as it is.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiohttp import web

from .. import records
from ..i18n import _
from ..storage.schema import schools
from ..transactions import reading, writing
from . import auditlog, formatting
from .render import FormError, Refused, money, redirect, render, text, whole_number
from .scope import School, require_write, school_of
from .words import word

routes = web.RouteTableDef()
MONEY_FIELDS = ("offline_max_sale", "offline_max_unsynced_total", "overdraft_limit")
THRESHOLD = "low_balance_threshold"
MAX_OFFLINE_HOURS = 24 * 30


async def _current(conn: Any, school_id: str) -> dict[str, int | None]:
    row = (await conn.execute(sa.select(
        schools.c.offline_max_sale, schools.c.offline_max_unsynced_total,
        schools.c.offline_max_hours, schools.c.overdraft_limit, schools.c.low_balance_threshold)
        .where(schools.c.school_id == school_id))).one()
    return {k: None if v is None else int(v) for k, v in row._mapping.items()}


def _parse(form: Any, school: School) -> dict[str, int | None]:
    values: dict[str, int | None] = {}
    for name in MONEY_FIELDS:
        values[name] = money(form, name, school.currency, max_len=20, prefixed=True,
                             error=_("%(field)s must be zero or more", field=word(name)))
    raw_hours = text(form, "offline_max_hours", max_len=5)
    hours = whole_number(raw_hours)
    if hours is None or not 1 <= hours <= MAX_OFFLINE_HOURS:
        raise FormError(_("offline hours must be a whole number from 1 to %(most)d",
                          most=MAX_OFFLINE_HOURS))
    values["offline_max_hours"] = hours
    if int(values["offline_max_sale"] or 0) > int(values["offline_max_unsynced_total"] or 0):
        raise FormError(_("the largest single sale cannot exceed the cap on unsynced sales"))
    if THRESHOLD in form:
        typed = text(form, THRESHOLD, max_len=20, required=False)
        values[THRESHOLD] = None if not typed else money(
            form, THRESHOLD, school.currency, max_len=20, prefixed=True,
            error=_("%(field)s must be zero or more", field=word(THRESHOLD)))
    return values


@routes.get("/admin/settings")
async def settings_page(request: web.Request) -> web.StreamResponse:
    school = school_of(request)
    async with reading(request.app) as conn:
        current = await _current(conn, school.school_id)
    return render(request, "settings.html", {"current": current})


@routes.post("/admin/settings")
async def settings_update(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school = school_of(request)
    form = await request.post()
    try:
        wanted = _parse(form, school)
    except FormError as exc:
        return redirect("/admin/settings", _("Not saved: %(why)s.", why=exc), error=True)
    async with writing(request.app) as conn:
        before = await _current(conn, school.school_id)
        changes = {k: v for k, v in wanted.items() if before[k] != v}
        if not changes:
            raise Refused("/admin/settings", _("Nothing changed."))
        terminals = {k: int(v or 0) for k, v in changes.items() if k != THRESHOLD}
        if terminals:
            await records.update_settings(conn, school.school_id, **terminals)
        if THRESHOLD in changes:
            await records.set_low_balance_threshold(conn, school.school_id, changes[THRESHOLD])
        await auditlog.record(conn, request, "settings_updated", school_id=school.school_id,
                              target_type="school", target_id=school.school_id,
                              before={k: before[k] for k in changes}, after=changes)
    cap = formatting.money(wanted["offline_max_sale"], school.currency)
    return redirect("/admin/settings",
                    _("Settings saved (largest single sale %(cap)s); terminals get them at "
                      "their next sync.", cap=cap))
