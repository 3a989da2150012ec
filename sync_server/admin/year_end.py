"""Year-end: the students who left, deactivated in bulk, their money refunded or given to a
sibling through the ledger, their bracelets blocked.

Three steps, admins only. Choose (student numbers pasted, or a whole grade), preview (how
many, the money involved, who owes money, who has a sibling: another active student of the
school with the same parent email or phone), apply. Each student is then settled in a
transaction of its own, so one refusal never undoes the others: the balance refunded or
moved to the chosen sibling (:mod:`sync_server.ledger.leavers`, under a key made of the run
and the wallet, so a resubmitted form or a second click never pays twice), the student made
inactive (the wallet closed: tills refuse it), every active bracelet blocked with reason
``left`` (terminals refuse it; parents' endpoints hear ``bracelet.blocked``), one audit row.
A negative balance is never written off here: those students are listed for a person and
left as they are.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from aiohttp.web_request import FileField
from multidict import MultiDictProxy
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow
from shared.ids import new_id

from .. import records
from ..i18n import _
from ..ledger import leavers
from ..ledger.money_ops import OpRefused
from ..storage.schema import credentials, wallets
from ..transactions import reading, writing
from . import auditlog
from .csv_text import EncodingRefused, decode_upload
from .render import render
from .scope import School, admin_of, require_write, school_of

routes = web.RouteTableDef()
MAX_STUDENTS = 5000
MAX_FILE = 2 * 1024 * 1024
RUN_ID = re.compile(r"^ye_[0-9a-f]{32}$")
WALLET_ID = re.compile(r"^[a-z]{3}_[0-9a-f]{32}$")
REFUND = "refund"


@dataclass
class Leaver:
    wallet: Any
    siblings: list[Any]


@routes.get("/admin/year-end")
async def year_end_form(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school = school_of(request)
    async with reading(request.app) as conn:
        grades = (await conn.execute(
            sa.select(wallets.c.grade, sa.func.count()).where(
                wallets.c.school_id == school.school_id, wallets.c.grade.is_not(None),
                wallets.c.student_status == "active")
            .group_by(wallets.c.grade).order_by(wallets.c.grade))).all()
    return render(request, "year_end.html", {"grades": grades, "error": None})


def _numbers(form: MultiDictProxy[Any]) -> list[str]:
    """Student numbers pasted one a line, or separated by commas, semicolons or spaces; and
    those of an uploaded file: its ``student_number`` column when its header names one (a
    roster export), else every cell. ValueError for a file that cannot be read."""
    raw = str(form.get("numbers", ""))[:200_000]
    numbers = [n for n in re.split(r"[\s,;\u061b\u060c]+", raw) if n]
    upload = form.get("file")
    if isinstance(upload, FileField):
        blob = upload.file.read(MAX_FILE + 1)
        if len(blob) > MAX_FILE:
            raise ValueError(_("the file is larger than 2 MiB: split it"))
        try:
            text, _encoding = decode_upload(blob)
        except EncodingRefused as exc:
            raise ValueError(str(exc)) from None
        rows = list(csv.reader(io.StringIO(text)))
        header = [h.strip().lower() for h in rows[0]] if rows else []
        if "student_number" in header:
            at = header.index("student_number")
            numbers += [r[at].strip() for r in rows[1:] if len(r) > at and r[at].strip()]
        else:
            numbers += [c.strip() for r in rows for c in r if c.strip()]
    return list(dict.fromkeys(numbers))


@routes.post("/admin/year-end/preview")
async def year_end_preview(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school = school_of(request)
    form = await request.post()
    try:
        numbers, grade = _numbers(form), str(form.get("grade", "")).strip()[:40]
    except (ValueError, csv.Error) as exc:
        return render(request, "year_end.html", {"grades": [], "error": str(exc)}, status=400)
    if not numbers and not grade:
        return render(request, "year_end.html", {"grades": [], "error": _(
            "paste student numbers or choose a grade")}, status=400)
    if len(numbers) > MAX_STUDENTS:
        return render(request, "year_end.html", {"grades": [], "error": _(
            "more than %(most)d students: split the list", most=MAX_STUDENTS)}, status=400)
    async with reading(request.app) as conn:
        chosen = await _chosen(conn, school, numbers, grade)
        leavers_ = await _with_siblings(conn, school, chosen)
    known = {w.student_number for w in chosen}
    # An inactive student still holding money (made inactive on the student form) is
    # settled too; one already inactive and empty has nothing left to do.
    active = [lv for lv in leavers_
              if lv.wallet.student_status == "active" or int(lv.wallet.balance) != 0]
    done = {lv.wallet.wallet_id for lv in active}
    return render(request, "year_end_preview.html", {
        "run_id": new_id("ye"), "grade": grade,
        "settle": [lv for lv in active if int(lv.wallet.balance) >= 0],
        "owing": [lv for lv in active if int(lv.wallet.balance) < 0],
        "already": [lv.wallet for lv in leavers_ if lv.wallet.wallet_id not in done],
        "unknown": [n for n in numbers if n not in known],
        "total": sum(int(lv.wallet.balance) for lv in active if int(lv.wallet.balance) > 0)})


async def _chosen(conn: AsyncConnection, school: School, numbers: list[str],
                  grade: str) -> list[Any]:
    stmt = sa.select(wallets).where(wallets.c.school_id == school.school_id)
    picks: list[sa.ColumnElement[bool]] = []
    if numbers:
        picks.append(wallets.c.student_number.in_(numbers))
    if grade:
        picks.append(sa.and_(wallets.c.grade == grade, wallets.c.student_status == "active"))
    rows = (await conn.execute(stmt.where(sa.or_(*picks)).order_by(
        wallets.c.grade, wallets.c.display_name, wallets.c.wallet_id).limit(MAX_STUDENTS + 1)
    )).all()
    return list(rows[:MAX_STUDENTS])


async def _with_siblings(conn: AsyncConnection, school: School,
                         chosen: list[Any]) -> list[Leaver]:
    """Each chosen student with the active students of the school who share a parent email
    or phone (and are not leaving in this run): where a balance may go instead of back."""
    leaving = {w.wallet_id for w in chosen}
    emails = {w.parent_email for w in chosen if w.parent_email}
    phones = {w.parent_phone for w in chosen if w.parent_phone}
    family: list[Any] = []
    if emails or phones:
        family = list((await conn.execute(sa.select(
            wallets.c.wallet_id, wallets.c.display_name, wallets.c.student_number,
            wallets.c.grade, wallets.c.parent_email, wallets.c.parent_phone).where(
            wallets.c.school_id == school.school_id, wallets.c.student_status == "active",
            sa.or_(wallets.c.parent_email.in_(emails or {""}),
                   wallets.c.parent_phone.in_(phones or {""}))))).all())
    return [Leaver(w, [f for f in family if f.wallet_id not in leaving and (
        (w.parent_email and f.parent_email == w.parent_email)
        or (w.parent_phone and f.parent_phone == w.parent_phone))]) for w in chosen]


@routes.post("/admin/year-end/apply")
async def year_end_apply(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school, admin = school_of(request), admin_of(request)
    form = await request.post()
    run_id = str(form.get("run_id", ""))
    chosen = list(dict.fromkeys(str(w) for w in form.getall("wallet", [])))
    if not RUN_ID.match(run_id) or not chosen or len(chosen) > MAX_STUDENTS or not all(
            WALLET_ID.match(w) for w in chosen):
        return render(request, "year_end.html", {"grades": [], "error": _(
            "the year-end form is incomplete: start again from the preview")}, status=400)
    targets = {w: str(form.get(f"to_{w}", REFUND)) for w in chosen}
    async with reading(request.app) as conn:
        # Another school's student, or one typed in, anywhere in the form: 404, nothing done.
        named = set(chosen) | {t for t in targets.values() if t != REFUND}
        mine = set((await conn.execute(sa.select(wallets.c.wallet_id).where(
            wallets.c.school_id == school.school_id,
            wallets.c.wallet_id.in_(named)))).scalars())
    if named - mine:
        raise web.HTTPNotFound(text=_("not found in this school"))
    results = []
    for wallet_id in chosen:
        sibling = None if targets[wallet_id] == REFUND else targets[wallet_id]
        if sibling is not None and sibling in chosen:
            results.append(_result(wallet_id, "error", _(
                "the sibling chosen is leaving too: refund or choose another")))
            continue
        results.append(await _settle_one(request, school, admin.user_id, run_id, wallet_id,
                                         sibling))
    return render(request, "year_end_done.html", {"results": results, "run_id": run_id})


def _result(wallet_id: str, outcome: str, message: str, wallet: Any = None,
            **more: Any) -> dict[str, Any]:
    return {"wallet_id": wallet_id, "outcome": outcome, "message": message,
            "wallet": wallet, "amount": None, "sibling": None, "blocked": None, **more}


async def _settle_one(request: web.Request, school: School, actor: str, run_id: str,
                      wallet_id: str, sibling_id: str | None) -> dict[str, Any]:
    """One leaver, in its own transaction: money, status, bracelets, audit, or nothing."""
    try:
        async with writing(request.app) as conn:
            return await _settle_in(conn, request, school, actor, run_id, wallet_id,
                                    sibling_id)
    except OpRefused as exc:
        if exc.code == "negative_balance":
            return _result(wallet_id, "owing", _("negative balance: left for a person to "
                                                 "settle; nothing was changed"))
        return _result(wallet_id, "error", _("Nothing changed: %(why)s.", why=exc.words))
    except _NotFound:
        return _result(wallet_id, "error", _("not found in this school"))


class _NotFound(Exception):
    pass


async def _settle_in(conn: AsyncConnection, request: web.Request, school: School,
                     actor: str, run_id: str, wallet_id: str,
                     sibling_id: str | None) -> dict[str, Any]:
    sibling = None
    if sibling_id is not None:
        sibling = (await conn.execute(sa.select(wallets).where(
            wallets.c.school_id == school.school_id, wallets.c.wallet_id == sibling_id,
            wallets.c.student_status == "active"))).first()
        if sibling is None:
            raise OpRefused("sibling_unknown", _("the sibling is not an active student of "
                                                 "this school"))
    done = await leavers.settle(conn, school_id=school.school_id, wallet_id=wallet_id,
                                sibling_id=sibling_id, key=f"ye:{run_id}:{wallet_id}",
                                actor=actor, reason=f"year-end {run_id}")
    wallet = (await conn.execute(sa.select(wallets).where(
        wallets.c.school_id == school.school_id, wallets.c.wallet_id == wallet_id))).first()
    if wallet is None:  # settle() refuses unknown wallets first; kept for the type checker
        raise _NotFound()
    blocked = []
    if wallet.student_status != "inactive":
        await records.update_wallet(conn, school.school_id, wallet_id,
                                    student_status="inactive", status="closed",
                                    left_at=utcnow())
    for uid in (await conn.execute(sa.select(credentials.c.uid).where(
            credentials.c.school_id == school.school_id, credentials.c.wallet_id == wallet_id,
            credentials.c.status == "active"))).scalars():
        await records.block_credential(conn, school.school_id, uid, reason="left",
                                       actor=actor, note=f"year-end {run_id}")
        blocked.append(uid)
    # Nothing done now (a resubmit, or a student already settled by an earlier run).
    if (done.replay or done.amount == 0) and not blocked and wallet.student_status == "inactive":
        return _result(wallet_id, "already", _("already done by this year-end run"), wallet,
                       amount=done.amount, sibling=sibling)
    await auditlog.record(
        conn, request, "student_left", school_id=school.school_id, target_type="wallet",
        target_id=wallet_id,
        before={"balance": int(wallet.balance) + done.amount if not done.replay
                else int(wallet.balance), "student_status": wallet.student_status},
        after={"balance": int(wallet.balance), "student_status": "inactive",
               ("transferred" if sibling_id else "refunded"): done.amount,
               **({"to_wallet": sibling_id} if sibling_id else {}),
               "bracelets_blocked": len(blocked)},
        note=f"year-end {run_id}")
    if sibling_id:
        return _result(wallet_id, "transferred", "", wallet, amount=done.amount,
                       sibling=sibling, blocked=len(blocked))
    return _result(wallet_id, "refunded", "", wallet, amount=done.amount, blocked=len(blocked))
