"""Issuing a class its bracelets with a USB reader in keyboard-wedge mode.

A wedge reader "types" the UID it reads followed by Enter into the focused field. The page
shows one student at a time (the next active student of the class without an active
bracelet) with the UID field focused (``autofocus``); Enter posts the form, which carries the
student's wallet id, so a tap can only ever go to the student shown. After each assignment
the browser is redirected back and the next student appears with the field focused again:
no script is needed, and a class of 30 takes about as long as tapping 30 bracelets. A refused
tap (malformed, active elsewhere, already this student's) is shown in plain words and the
same student stays on screen. "Skip" leaves an absent student for later (the skip list
rides in the URL). Once handed out, the class's assigned bracelets are marked delivered in
one step.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.ids import mask_uid

from .. import records
from ..i18n import _
from ..storage.schema import bracelets, credentials, wallets
from ..transactions import reading, writing
from . import auditlog
from .render import FormError, redirect, render, text
from .scope import admin_of, found, require_issue, school_of

routes = web.RouteTableDef()
MAX_SKIPPED = 200  # students left for later in one pass (keeps the URL short)


def _klass(source: Any) -> tuple[str, str]:
    """The class picked: (grade, homeroom), each trimmed and at most 40 characters."""
    return (str(source.get("grade", "")).strip()[:40],
            str(source.get("homeroom", "")).strip()[:40])


def _skipped(source: Any) -> list[str]:
    raw = str(source.get("skip", ""))
    return [w for w in raw.split(",") if w and len(w) <= 64][:MAX_SKIPPED]


def issue_url(grade: str, homeroom: str, skipped: list[str] | None = None) -> str:
    params = {"grade": grade, "homeroom": homeroom}
    if skipped:
        params["skip"] = ",".join(skipped)
    return "/admin/bracelets/issue?" + urlencode(params)


def _in_class(school_id: str, grade: str, homeroom: str) -> list[sa.ColumnElement[bool]]:
    return [wallets.c.school_id == school_id, wallets.c.grade == grade,
            wallets.c.homeroom == homeroom, wallets.c.student_status == "active",
            wallets.c.status != "closed"]


async def _classes(conn: AsyncConnection, school_id: str) -> list[Any]:
    return list((await conn.execute(
        sa.select(wallets.c.grade, wallets.c.homeroom, sa.func.count().label("students"))
        .where(wallets.c.school_id == school_id, wallets.c.student_status == "active",
               wallets.c.status != "closed", wallets.c.grade.is_not(None),
               wallets.c.homeroom.is_not(None))
        .group_by(wallets.c.grade, wallets.c.homeroom)
        .order_by(wallets.c.grade, wallets.c.homeroom))).all())


async def class_progress(conn: AsyncConnection, school_id: str, grade: str,
                         homeroom: str) -> dict[str, Any]:
    """The class's students still without an active bracelet (in the order they are
    issued: by name), and how many bracelets of the class are assigned but not delivered."""
    has_active = sa.exists().where(credentials.c.school_id == school_id,
                                   credentials.c.wallet_id == wallets.c.wallet_id,
                                   credentials.c.status == "active")
    where = _in_class(school_id, grade, homeroom)
    waiting = list((await conn.execute(
        sa.select(wallets.c.wallet_id, wallets.c.display_name, wallets.c.student_number)
        .where(*where, ~has_active)
        .order_by(wallets.c.display_name, wallets.c.wallet_id))).all())
    total = int((await conn.execute(
        sa.select(sa.func.count()).select_from(wallets).where(*where))).scalar_one())
    undelivered = int((await conn.execute(
        sa.select(sa.func.count()).select_from(bracelets)
        .join(wallets, wallets.c.wallet_id == bracelets.c.wallet_id)
        .where(bracelets.c.school_id == school_id, bracelets.c.state == "assigned",
               *where))).scalar_one())
    return {"waiting": waiting, "total": total, "undelivered": undelivered}


@routes.get("/admin/bracelets/issue")
async def issue_page(request: web.Request) -> web.StreamResponse:
    require_issue(request)
    school = school_of(request)
    grade, homeroom = _klass(request.query)
    skipped = _skipped(request.query)
    async with reading(request.app) as conn:
        classes = await _classes(conn, school.school_id)
        progress = (await class_progress(conn, school.school_id, grade, homeroom)
                    if grade and homeroom else None)
    student, later = None, []
    if progress is not None:
        ahead = [w for w in progress["waiting"] if w.wallet_id not in skipped]
        later = [w for w in progress["waiting"] if w.wallet_id in skipped]
        student = ahead[0] if ahead else None
    return render(request, "bracelet_issue.html", {
        "classes": classes, "grade": grade, "homeroom": homeroom, "progress": progress,
        "student": student, "later": later, "skip": ",".join(skipped),
        "skip_url": (issue_url(grade, homeroom, [*skipped, student.wallet_id])
                     if student is not None else None),
        "retry_url": issue_url(grade, homeroom)})


@routes.post("/admin/bracelets/issue")
async def issue_one(request: web.Request) -> web.StreamResponse:
    """One tap: the UID typed by the reader goes to the student the form was drawn for."""
    require_issue(request)
    school = school_of(request)
    form = await request.post()
    grade, homeroom = _klass(form)
    back = issue_url(grade, homeroom, _skipped(form))
    wallet_id = str(form.get("wallet_id", ""))
    async with writing(request.app) as conn:
        student = found((await conn.execute(
            sa.select(wallets.c.wallet_id, wallets.c.display_name)
            .where(wallets.c.school_id == school.school_id,
                   wallets.c.wallet_id == wallet_id))).first())
        try:
            uid = records.parse_uid(text(form, "uid", max_len=40, label="bracelet UID"))
            await records.assign_credential(conn, school.school_id, wallet_id, uid,
                                            actor=admin_of(request).user_id,
                                            note="issued by tapping")
        except (FormError, records.RecordError) as exc:
            return redirect(back, _("Not assigned to %(name)s: %(why)s.",
                                    name=student.display_name, why=exc), error=True)
        await auditlog.record(conn, request, "bracelet_assigned", school_id=school.school_id,
                              target_type="bracelet", target_id=uid, before=None,
                              after={"wallet_id": wallet_id, "state": "assigned"},
                              note="issued by tapping")
    return redirect(back, _("%(uid)s assigned to %(name)s.", uid=mask_uid(uid),
                            name=student.display_name))


@routes.post("/admin/bracelets/issue/deliver")
async def deliver_class(request: web.Request) -> web.StreamResponse:
    """Mark every assigned (not yet delivered) bracelet of the class delivered."""
    require_issue(request)
    school = school_of(request)
    form = await request.post()
    grade, homeroom = _klass(form)
    back = issue_url(grade, homeroom)
    if not (grade and homeroom):
        return redirect("/admin/bracelets/issue", _("Pick a class first."), error=True)
    actor = admin_of(request).user_id
    async with writing(request.app) as conn:
        uids = list((await conn.execute(
            sa.select(bracelets.c.uid).join(wallets, wallets.c.wallet_id == bracelets.c.wallet_id)
            .where(bracelets.c.school_id == school.school_id, bracelets.c.state == "assigned",
                   *_in_class(school.school_id, grade, homeroom))
            .order_by(bracelets.c.uid))).scalars())
        for uid in uids:
            await records.deliver_bracelet(conn, school.school_id, uid, actor=actor)
            await auditlog.record(conn, request, "bracelet_delivered",
                                  school_id=school.school_id, target_type="bracelet",
                                  target_id=uid, before={"state": "assigned"},
                                  after={"state": "delivered"}, note="whole class")
    return redirect(back, _("%(n)d bracelets recorded as delivered.", n=len(uids)))
