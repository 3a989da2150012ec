"""The audit log page: every admin action of this school, filterable, newest first.

Viewers cannot open it (it names people and their changes). A platform admin also sees the
entries that belong to no school (their own logins, failed logins for unknown emails).

Above the log, failed sign-ins of the last 7 days per (account, address): when and from where
someone tried this school's accounts (a platform admin also sees platform accounts and emails
that name no account).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow

from ..storage.schema import admin_users, audit_log, login_attempts
from ..transactions import reading
from . import formatting
from .lockout import failures_by_source
from .render import page_context, paged, parse_day, render
from .scope import admin_of, require_admin_role, school_of

routes = web.RouteTableDef()
FAILURES_SHOWN_FOR = timedelta(days=7)
# Audit rows keep amounts as the integers the ledger uses (minor units); these keys are shown
# as money in the school's currency, not as "balance 12550".
MONEY_KEYS = frozenset({"balance", "balance_before", "balance_after", "amount", "price",
                        "daily_limit", "offline_max_sale", "offline_max_unsynced_total",
                        "overdraft_limit", "credited", "debited", "total"})


def audit_value(key: str, value: Any, currency: str) -> str:
    """One before/after value as a person reads it: money formatted, lists joined."""
    if key in MONEY_KEYS and isinstance(value, int) and not isinstance(value, bool):
        return formatting.money(value, currency)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if value is None:
        return "—"
    return str(value)


@routes.get("/admin/audit")
async def audit_page(request: web.Request) -> web.StreamResponse:
    require_admin_role(request)
    school, admin = school_of(request), admin_of(request)
    q = request.query
    scope = audit_log.c.school_id == school.school_id
    if admin.is_platform:
        scope = sa.or_(scope, audit_log.c.school_id.is_(None))
    stmt = sa.select(audit_log).where(scope)
    if action := q.get("action", "").strip()[:60]:
        stmt = stmt.where(audit_log.c.action == action)
    if actor := q.get("actor", "").strip().lower()[:320]:
        stmt = stmt.where(audit_log.c.actor_email.like(f"%{actor}%"))
    if target := q.get("target", "").strip()[:64]:
        stmt = stmt.where(audit_log.c.target_id == target)
    tz = ZoneInfo(school.timezone)
    if day := parse_day(q.get("from")):
        stmt = stmt.where(audit_log.c.at >= datetime.combine(
            datetime.fromisoformat(day).date(), time(), tz))
    if day := parse_day(q.get("to")):
        stmt = stmt.where(audit_log.c.at < datetime.combine(
            datetime.fromisoformat(day).date() + timedelta(days=1), time(), tz))
    async with reading(request.app) as conn:
        rows = (await conn.execute(paged(stmt.order_by(audit_log.c.audit_id.desc()),
                                         request))).all()
        actions = (await conn.execute(sa.select(audit_log.c.action).where(scope).distinct()
                                      .order_by(audit_log.c.action))).scalars().all()
        failures = await _failed_sign_ins(conn, school.school_id, admin.is_platform)
    return render(request, "audit.html", {**page_context(request, rows), "actions": actions,
                                          "failed_sign_ins": failures,
                                          "audit_value": audit_value})


async def _failed_sign_ins(conn: AsyncConnection, school_id: str,
                           platform: bool) -> list[dict[str, Any]]:
    """The 50 most recent (account, address) sources of failed sign-ins, with the account's
    email; ``None`` for an email that names no account."""
    users = sa.select(admin_users.c.user_id).where(admin_users.c.school_id == school_id)
    accounts: sa.ColumnElement[bool] = login_attempts.c.account.in_(users)
    if platform:
        accounts = sa.or_(accounts, login_attempts.c.account.in_(
            sa.select(admin_users.c.user_id).where(admin_users.c.school_id.is_(None))),
            login_attempts.c.account.like("anon:%"))
    rows = (await conn.execute(failures_by_source(utcnow() - FAILURES_SHOWN_FOR, accounts)
                               .limit(50))).all()
    emails = {u.user_id: u.email for u in await conn.execute(
        sa.select(admin_users.c.user_id, admin_users.c.email)
        .where(admin_users.c.user_id.in_({r.account for r in rows})))}
    return [{"email": emails.get(r.account), "address": r.address, "failures": r.failures,
             "last_at": r.last_at} for r in rows]
