"""Adding and editing a student in the console: the roster fields one student at a time.

The same rules as the CSV import (:mod:`.roster`, :mod:`sync_server.parent_contact`): a
student number is unique in the school, parent contacts are checked and phones normalised.
Every field is read and checked before anything is written, so a refused form changes
nothing. A student made inactive (left the school) gets a ``closed`` wallet, which is what
terminals see (the snapshot's wallet status; the wire format is unchanged), so tills refuse
their sales; made active again, the wallet reopens. Balances never change here: refunds and
transfers of a leaver's money are the year-end page's (:mod:`.year_end`).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow

from .. import parent_contact, records
from ..i18n import _
from ..storage.schema import wallets
from ..transactions import reading, writing
from . import auditlog
from .render import FormError, money, redirect, render, text
from .scope import School, found, require_write, school_of
from .wallets import _short_text

routes = web.RouteTableDef()
FIELDS = ("display_name", "student_number", "grade", "homeroom", "student_status",
          "parent_email", "parent_phone", "language", "daily_limit")


def read_form(form: MultiDictProxy[Any], school: School) -> dict[str, Any]:
    """Every field of the student form, checked; FormError names the first bad one."""
    values: dict[str, Any] = {"display_name": text(form, "display_name", label=_("name"))}
    number = text(form, "student_number", max_len=64, required=False)
    if number and not number.isprintable():
        raise FormError(_("student_number is longer than 64 characters or has odd characters"))
    values["student_number"] = number or None
    values["grade"] = _short_text(form, "grade")
    values["homeroom"] = _short_text(form, "homeroom")
    status = form.get("student_status", "active")
    if status not in records.STUDENT_STATUSES:
        raise FormError(_("student status must be active or inactive"))
    values["student_status"] = status
    try:
        values["parent_email"] = parent_contact.parse_email(
            text(form, "parent_email", max_len=parent_contact.EMAIL_MAX, required=False))
        values["parent_phone"] = parent_contact.parse_phone(
            text(form, "parent_phone", max_len=40, required=False))
        values["language"] = parent_contact.parse_language(
            text(form, "language", max_len=8, required=False))
    except parent_contact.ContactError as exc:
        raise FormError(str(exc)) from None
    values["daily_limit"] = money(
        form, "daily_limit", school.currency, max_len=30,
        error=_("the daily limit must be zero or more")) if text(
            form, "daily_limit", max_len=30, required=False) else None
    return values


async def _number_taken(conn: AsyncConnection, school: School, number: str | None,
                        wallet_id: str | None) -> bool:
    if number is None:
        return False
    stmt = sa.select(wallets.c.wallet_id).where(wallets.c.school_id == school.school_id,
                                                wallets.c.student_number == number)
    if wallet_id is not None:
        stmt = stmt.where(wallets.c.wallet_id != wallet_id)
    return (await conn.execute(stmt)).first() is not None


def _form_page(request: web.Request, values: dict[str, Any], wallet: Any = None,
               error: str | None = None) -> web.StreamResponse:
    values = {name: values.get(name) for name in FIELDS}
    return render(request, "student_form.html", {"values": values, "wallet": wallet,
                                                 "error": error},
                  status=400 if error else 200)


def _shown(form: MultiDictProxy[Any]) -> dict[str, Any]:
    """What was typed, to draw the form again after a refusal."""
    return {name: str(form.get(name, ""))[:400] for name in FIELDS}


@routes.get("/admin/wallets/new")
async def new_student_form(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school_of(request)
    return _form_page(request, {"student_status": "active"})


@routes.post("/admin/wallets/new")
async def new_student(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school = school_of(request)
    form = await request.post()
    try:
        values = read_form(form, school)
    except FormError as exc:
        return _form_page(request, _shown(form), error=str(exc))
    async with writing(request.app) as conn:
        if await _number_taken(conn, school, values["student_number"], None):
            return _form_page(request, _shown(form), error=_(
                "student number %(number)s already belongs to another student",
                number=values["student_number"]))
        inactive = values["student_status"] == "inactive"
        wallet_id = await records.create_wallet(
            conn, school.school_id, values["display_name"],
            status="closed" if inactive else "active",
            **{k: v for k, v in values.items() if k != "display_name"})
        await auditlog.record(conn, request, "student_created", school_id=school.school_id,
                              target_type="wallet", target_id=wallet_id,
                              after=_audited(values))
    return redirect(f"/admin/wallets/{wallet_id}", _("Student added."))


async def _wallet(conn: AsyncConnection, school: School, wallet_id: str) -> Any:
    return found((await conn.execute(sa.select(wallets).where(
        wallets.c.school_id == school.school_id, wallets.c.wallet_id == wallet_id))).first())


@routes.get("/admin/wallets/{wallet_id}/edit")
async def edit_student_form(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school = school_of(request)
    async with reading(request.app) as conn:
        wallet = await _wallet(conn, school, request.match_info["wallet_id"])
    return _form_page(request, {k: wallet._mapping[k] for k in FIELDS}, wallet)


@routes.post("/admin/wallets/{wallet_id}/edit")
async def edit_student(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school = school_of(request)
    wallet_id = request.match_info["wallet_id"]
    form = await request.post()
    async with writing(request.app) as conn:
        wallet = await _wallet(conn, school, wallet_id)  # 404 first, for another school's
        try:
            values = read_form(form, school)
        except FormError as exc:
            return _form_page(request, _shown(form), wallet, error=str(exc))
        if await _number_taken(conn, school, values["student_number"], wallet_id):
            return _form_page(request, _shown(form), wallet, error=_(
                "student number %(number)s already belongs to another student",
                number=values["student_number"]))
        changes = {k: v for k, v in values.items() if wallet._mapping[k] != v}
        changes.update(status_change(wallet, values["student_status"]))
        if not changes:
            return redirect(f"/admin/wallets/{wallet_id}", _("Nothing changed."))
        before = {k: wallet._mapping[k] for k in changes}
        await records.update_wallet(conn, school.school_id, wallet_id, **changes)
        await auditlog.record(conn, request, "student_updated", school_id=school.school_id,
                              target_type="wallet", target_id=wallet_id,
                              before=_audited(before), after=_audited(changes))
    return redirect(f"/admin/wallets/{wallet_id}",
                    _("Saved; terminals get it with their next sync."))


def status_change(wallet: Any, student_status: str) -> dict[str, Any]:
    """The wallet fields that follow a student's status: leaving closes the wallet (tills
    refuse it) and dates the leaving; coming back reopens a closed wallet. A frozen wallet
    stays frozen: freezing is a separate decision."""
    if student_status == wallet.student_status:
        return {}
    if student_status == "inactive":
        return {"student_status": "inactive", "status": "closed", "left_at": utcnow()}
    return {"student_status": "active", "left_at": None,
            **({"status": "active"} if wallet.status == "closed" else {})}


def _audited(values: dict[str, Any]) -> dict[str, Any]:
    """The audit row's view: parent contacts masked (the audit page is read by every admin;
    the full value is on the student's page)."""
    shown = dict(values)
    if shown.get("parent_email"):
        shown["parent_email"] = parent_contact.mask_email(shown["parent_email"])
    if shown.get("parent_phone"):
        shown["parent_phone"] = parent_contact.mask_phone(shown["parent_phone"])
    return shown
