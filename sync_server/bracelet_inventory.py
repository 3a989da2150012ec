"""The bracelet inventory and each bracelet's history, kept by every path that changes one.

A physical bracelet goes ``in_stock`` (a supplier's batch) -> ``assigned`` (given to a
student) -> ``delivered`` (handed over, recorded by a manager) -> ``blocked`` (lost, damaged,
replaced, the student left) -> ``retired`` (out of circulation for good). A UID never seen
before may be assigned straight away: it enters the inventory as ``assigned``.

Terminals still only see ``credentials`` (active or blocked): assigning and blocking change
it with the school's version bump, as before; stocking, delivering and retiring touch the
inventory alone and send nothing to terminals. Each change writes its ``credential_events``
row here, whoever calls (console, roster import, ``seed-demo``, the CLI), so no bracelet has a
gap in its story. An active UID belongs to one wallet across all schools: checked first for a
clear message, and enforced by the partial unique index ``ux_credentials_active_uid`` when two
schools race (the insert runs in a SAVEPOINT on PostgreSQL so the caller's transaction
survives the refusal).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow
from shared.ids import mask_uid

from .i18n import _
from .ledger import versions
from .notify import outbox
from .record_errors import RecordError, parse_uid
from .storage.schema import bracelets, credential_events, credentials, wallets

BLOCK_REASONS = ("lost", "damaged", "replaced", "left", "other")


class AlreadyAssigned(RecordError):
    """The UID is already this wallet's active bracelet: nothing to do (a re-import or a
    second tap may treat it as done)."""


async def bracelet_of(conn: AsyncConnection, school_id: str, uid: str) -> Any:
    """The inventory row of ``uid`` in this school, or None."""
    return (await conn.execute(sa.select(bracelets).where(
        bracelets.c.school_id == school_id, bracelets.c.uid == uid))).first()


async def active_elsewhere(conn: AsyncConnection, school_id: str, uid: str) -> bool:
    """Whether ``uid`` is an active bracelet in another school (never says which)."""
    return (await conn.execute(sa.select(credentials.c.uid).where(
        credentials.c.uid == uid, credentials.c.status == "active",
        credentials.c.school_id != school_id))).first() is not None


async def _history(conn: AsyncConnection, school_id: str, uid: str, wallet_id: str | None,
                   action: str, *, actor: str | None, other: str | None = None,
                   note: str | None = None, at: datetime | None = None) -> None:
    await conn.execute(sa.insert(credential_events).values(
        school_id=school_id, uid=uid, wallet_id=wallet_id, action=action, other_uid=other,
        at=at or utcnow(), actor_id=actor, note=note[:500] if note else None))


async def _guarded(conn: AsyncConnection, statements: list[Any]) -> None:
    """Run the writes that the unique indexes guard; a race lost to another transaction (the
    same UID made active in another school meanwhile) becomes a RecordError. PostgreSQL
    aborts a transaction on any error, so there the writes run in a SAVEPOINT; SQLite's
    write transactions exclude each other, so the checks before already decided."""
    try:
        if conn.dialect.name == "postgresql":
            async with conn.begin_nested():
                for stmt in statements:
                    await conn.execute(stmt)
        else:
            for stmt in statements:
                await conn.execute(stmt)
    except IntegrityError:
        raise RecordError(_("this bracelet was just made active elsewhere")) from None


async def stock_bracelet(conn: AsyncConnection, school_id: str, uid: str, *,
                         actor: str | None = None, batch_id: str | None = None,
                         note: str | None = None) -> str:
    """Add a new bracelet to the school's stock (``in_stock``); RecordError when this school
    already has it or it is active in another school."""
    uid = parse_uid(uid)
    existing = await bracelet_of(conn, school_id, uid)
    if existing is not None:
        raise RecordError(_("already in this school's inventory (%(state)s)",
                            state=existing.state))
    if await active_elsewhere(conn, school_id, uid):
        raise RecordError(_("this bracelet is active in another school"))
    now = utcnow()
    await _guarded(conn, [sa.insert(bracelets).values(
        school_id=school_id, uid=uid, state="in_stock", wallet_id=None, batch_id=batch_id,
        received_at=now, updated_at=now)])
    await _history(conn, school_id, uid, None, "stocked", actor=actor, note=note, at=now)
    return uid


async def assign_credential(conn: AsyncConnection, school_id: str, wallet_id: str, uid: str,
                            *, actor: str | None = None, note: str | None = None,
                            _action: str = "assigned", _other: str | None = None) -> str:
    """Give a bracelet to a wallet. An active bracelet belongs to one wallet in all schools;
    a blocked or retired one is never given out again (AlreadyAssigned when it is already
    this wallet's)."""
    uid = parse_uid(uid)
    if (await conn.execute(sa.select(wallets.c.wallet_id).where(
            wallets.c.school_id == school_id, wallets.c.wallet_id == wallet_id))).first() is None:
        raise RecordError(_("no such wallet in this school"))
    current = (await conn.execute(
        sa.select(credentials.c.wallet_id, credentials.c.status)
        .where(credentials.c.school_id == school_id, credentials.c.uid == uid))).first()
    if current is not None and current.status == "active":
        if current.wallet_id == wallet_id:
            raise AlreadyAssigned(_("this bracelet is already this student's"))
        raise RecordError(_("this bracelet is active on another student; block it first"))
    item = await bracelet_of(conn, school_id, uid)
    if (current is not None and current.status == "blocked") or (
            item is not None and item.state in ("blocked", "retired")):
        raise RecordError(_("this bracelet was blocked; a blocked bracelet is not given out "
                            "again"))
    if item is not None and item.state != "in_stock":
        raise RecordError(_("this bracelet is %(state)s", state=item.state))
    if await active_elsewhere(conn, school_id, uid):
        raise RecordError(_("this bracelet is active in another school"))
    now = utcnow()
    version = await versions.bump(conn, school_id)
    values = {"wallet_id": wallet_id, "status": "active", "assigned_at": now,
              "blocked_at": None, "version": version}
    writes: list[Any] = [sa.insert(credentials).values(school_id=school_id, uid=uid, **values)]
    if item is None:
        writes.append(sa.insert(bracelets).values(
            school_id=school_id, uid=uid, state="assigned", wallet_id=wallet_id,
            received_at=now, updated_at=now))
    else:
        writes.append(sa.update(bracelets).where(
            bracelets.c.school_id == school_id, bracelets.c.uid == uid)
            .values(state="assigned", wallet_id=wallet_id, updated_at=now))
    await _guarded(conn, writes)
    await _history(conn, school_id, uid, wallet_id, _action, actor=actor, other=_other,
                   note=note, at=now)
    return uid


async def deliver_bracelet(conn: AsyncConnection, school_id: str, uid: str, *,
                           actor: str | None = None) -> str:
    """Record that an assigned bracelet reached its student (``assigned`` -> ``delivered``)."""
    uid = parse_uid(uid)
    item = await bracelet_of(conn, school_id, uid)
    if item is None:
        raise RecordError(_("no such bracelet in this school"))
    if item.state != "assigned":
        raise RecordError(_("only an assigned bracelet can be delivered (this one is "
                            "%(state)s)", state=item.state))
    now = utcnow()
    await conn.execute(sa.update(bracelets).where(
        bracelets.c.school_id == school_id, bracelets.c.uid == uid,
        bracelets.c.state == "assigned")
        .values(state="delivered", delivered_at=now, delivered_by=actor, updated_at=now))
    await _history(conn, school_id, uid, item.wallet_id, "delivered", actor=actor, at=now)
    return uid


async def block_credential(conn: AsyncConnection, school_id: str, uid: str,
                           at: datetime | None = None, *, reason: str = "lost",
                           actor: str | None = None, note: str | None = None,
                           _action: str = "blocked", _other: str | None = None) -> str:
    """Block an active bracelet (terminals refuse it after their next sync), move it to
    ``blocked`` in the inventory and tell the school's endpoints (``bracelet.blocked``)."""
    uid = parse_uid(uid)
    if reason not in BLOCK_REASONS:
        raise RecordError(_("unknown reason %(reason)s", reason=reason))
    current = (await conn.execute(sa.select(credentials.c.wallet_id, credentials.c.status)
                                  .where(credentials.c.school_id == school_id,
                                         credentials.c.uid == uid))).first()
    if current is None:
        raise RecordError(_("no such bracelet in this school"))
    if current.status != "active":
        raise RecordError(_("this bracelet is already blocked"))
    when = at or utcnow()
    version = await versions.bump(conn, school_id)
    await conn.execute(sa.update(credentials).where(
        credentials.c.school_id == school_id, credentials.c.uid == uid)
        .values(status="blocked", blocked_at=when, version=version))
    item = await bracelet_of(conn, school_id, uid)
    if item is None:  # only a row written around the inventory (tests' raw inserts)
        await conn.execute(sa.insert(bracelets).values(
            school_id=school_id, uid=uid, state="blocked", wallet_id=current.wallet_id,
            received_at=when, updated_at=when))
    else:
        await conn.execute(sa.update(bracelets).where(
            bracelets.c.school_id == school_id, bracelets.c.uid == uid)
            .values(state="blocked", updated_at=when))
    await _history(conn, school_id, uid, current.wallet_id, _action, actor=actor,
                   other=_other, note=note or reason, at=when)
    student = (await conn.execute(sa.select(wallets.c.student_number).where(
        wallets.c.wallet_id == current.wallet_id))).scalar_one_or_none()
    await outbox.emit(conn, school_id=school_id, event_type="bracelet.blocked", data={
        "wallet_id": current.wallet_id, "student_number": student,
        "uid_masked": mask_uid(uid), "reason": reason})
    return uid


async def replace_credential(conn: AsyncConnection, school_id: str, old: str, new: str, *,
                             actor: str | None = None) -> tuple[str, str]:
    """Block ``old`` (if still active) and give its wallet ``new``, in the caller's
    transaction: a refusal of ``new`` raises and so rolls the block back."""
    old, new = parse_uid(old), parse_uid(new)
    if old == new:
        raise RecordError(_("the new bracelet must differ from the old one"))
    current = (await conn.execute(sa.select(credentials.c.wallet_id, credentials.c.status)
                                  .where(credentials.c.school_id == school_id,
                                         credentials.c.uid == old))).first()
    if current is None:
        raise RecordError(_("no such bracelet in this school"))
    if current.status == "active":
        await block_credential(conn, school_id, old, reason="replaced", actor=actor,
                               _action="replaced_by", _other=new)
    else:
        await _history(conn, school_id, old, current.wallet_id, "replaced_by", actor=actor,
                       other=new)
    await assign_credential(conn, school_id, current.wallet_id, new, actor=actor,
                            _action="replaces", _other=old)
    return old, new


async def retire_bracelet(conn: AsyncConnection, school_id: str, uid: str, *,
                          actor: str | None = None, note: str | None = None) -> str:
    """Take a blocked (or never issued) bracelet out of circulation for good. Its credential
    stays blocked, so terminals keep refusing it."""
    uid = parse_uid(uid)
    item = await bracelet_of(conn, school_id, uid)
    if item is None:
        raise RecordError(_("no such bracelet in this school"))
    if item.state not in ("blocked", "in_stock"):
        raise RecordError(_("only a blocked bracelet or one in stock can be retired (this one "
                            "is %(state)s)", state=item.state))
    now = utcnow()
    await conn.execute(sa.update(bracelets).where(
        bracelets.c.school_id == school_id, bracelets.c.uid == uid)
        .values(state="retired", updated_at=now))
    await _history(conn, school_id, uid, item.wallet_id, "retired", actor=actor, note=note,
                   at=now)
    return uid
