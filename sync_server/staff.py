"""Console users: creating them, their roles, deactivation and one-time set-password links.

The console (``admin/users.py``, ``admin/password_links.py``, ``admin/account.py``) decides
*who* may do each of these; this module keeps the rules that hold whoever asks:

- A new user gets no usable password: a random one nobody sees is hashed, and the user sets
  their own through a one-time link (the same link as a reset), so no password ever crosses
  the admin's screen.
- A link is 32 random bytes (``secrets.token_urlsafe(32)``); only its SHA-256 is stored, as for
  sessions. It works once, until it expires, and only while the user is active; making a new
  link voids the user's earlier unused ones.
- Deactivating a user deletes their sessions and voids their links in the same transaction
  (the session check also refuses an inactive user's session, so a worker that read the
  session just before still refuses the next request).
- Setting a password ends every session of the user (all but the caller's own when users
  change their own password).
- A school always keeps one active school admin, and the platform one active platform admin:
  the rows are locked (``FOR UPDATE`` on PostgreSQL; SQLite writes one at a time) before they
  are counted, so two admins deactivating each other at once cannot both succeed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow
from shared.ids import new_id

from .i18n import _
from .records import MIN_PASSWORD_LENGTH, RecordError
from .secrets import hash_password, off_loop, token_hash
from .storage.schema import admin_sessions, admin_users, password_resets, schools

PLATFORM_ADMIN = "platform_admin"
SCHOOL_ADMIN = "school_admin"
SCHOOL_ROLES = ("school_admin", "school_manager", "school_viewer")
MAX_PASSWORD_LENGTH = 1000  # argon2 hashes anything; this only bounds the work per request

_u = admin_users.c
_r = password_resets.c


@dataclass(frozen=True, slots=True)
class StaffUser:
    user_id: str
    email: str
    name: str
    role: str
    school_id: str | None
    active: bool
    language: str | None
    created_at: datetime
    deactivated_at: datetime | None
    password_changed_at: datetime | None

    def described(self) -> dict[str, object]:
        """What an audit row's before/after says about the user (never a password)."""
        return {"email": self.email, "name": self.name, "role": self.role,
                "active": self.active}


_COLUMNS = (_u.user_id, _u.email, _u.name, _u.role, _u.school_id, _u.active, _u.language,
            _u.created_at, _u.deactivated_at, _u.password_changed_at)


def _user(row: Any) -> StaffUser:
    return StaffUser(**row._mapping)


async def get_user(conn: AsyncConnection, user_id: str) -> StaffUser | None:
    row = (await conn.execute(sa.select(*_COLUMNS).where(_u.user_id == user_id))).first()
    return _user(row) if row else None


async def list_users(conn: AsyncConnection, school_id: str | None) -> list[StaffUser]:
    """A school's users (``school_id``), or the platform admins (``None``), active first."""
    where = _u.school_id == school_id if school_id else _u.role == PLATFORM_ADMIN
    rows = (await conn.execute(sa.select(*_COLUMNS).where(where)
                               .order_by(_u.active.desc(), _u.email))).all()
    return [_user(r) for r in rows]


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise RecordError(_("the password needs at least %(n)d characters",
                            n=MIN_PASSWORD_LENGTH))
    if len(password) > MAX_PASSWORD_LENGTH:
        raise RecordError(_("the password may have at most %(n)d characters",
                            n=MAX_PASSWORD_LENGTH))


async def create_user(conn: AsyncConnection, *, email: str, name: str, role: str,
                      school_id: str | None, language: str | None = None,
                      unusable_hash: str) -> StaffUser:
    """A user who can sign in only after setting a password through a link;
    ``unusable_hash`` is :func:`hashed` of a random password nobody is shown."""
    email = email.strip().lower()
    if role != PLATFORM_ADMIN and role not in SCHOOL_ROLES:
        raise RecordError(_("unknown role"))
    if (role == PLATFORM_ADMIN) != (school_id is None):
        raise RecordError(_("platform admins have no school; school roles need one"))
    if "@" not in email or len(email) > 320 or any(c.isspace() for c in email):
        raise RecordError(_("not an email address"))
    if school_id is not None and (await conn.execute(
            sa.select(schools.c.school_id).where(schools.c.school_id == school_id))).first() \
            is None:
        raise RecordError(_("no such school"))
    if (await conn.execute(sa.select(_u.user_id).where(_u.email == email))).first():
        raise RecordError(_("a user with this email already exists"))
    user_id = new_id("usr")
    await conn.execute(sa.insert(admin_users).values(
        user_id=user_id, email=email, name=name.strip() or email,
        password_hash=unusable_hash, role=role, school_id=school_id,
        active=True, created_at=utcnow(), language=language))
    user = await get_user(conn, user_id)
    assert user is not None
    return user


async def hashed(password: str) -> str:
    """The checked password's argon2 hash, made off the event loop (tens of milliseconds of
    CPU) and before a write transaction, so the database's writer is not held meanwhile."""
    check_password(password)
    return await off_loop(hash_password, password)


async def _other_active_admins(conn: AsyncConnection, user: StaffUser) -> int:
    """Active admins of the user's kind (school admins of their school, or platform admins)
    other than the user, their rows locked until the transaction ends."""
    if user.role == PLATFORM_ADMIN:
        where = sa.and_(_u.role == PLATFORM_ADMIN, _u.school_id.is_(None))
    else:
        where = sa.and_(_u.role == SCHOOL_ADMIN, _u.school_id == user.school_id)
    rows = (await conn.execute(sa.select(_u.user_id).where(where, _u.active)
                               .with_for_update())).all()
    return sum(1 for r in rows if r.user_id != user.user_id)


async def _keep_an_admin(conn: AsyncConnection, user: StaffUser) -> None:
    if user.active and user.role in (PLATFORM_ADMIN, SCHOOL_ADMIN) \
            and await _other_active_admins(conn, user) == 0:
        raise RecordError(_("a school keeps at least one active school admin")
                          if user.role == SCHOOL_ADMIN else
                          _("the platform keeps at least one active platform admin"))


async def change_role(conn: AsyncConnection, user: StaffUser, role: str) -> StaffUser:
    """A school user's role among the school roles (a platform admin stays one)."""
    if user.role == PLATFORM_ADMIN or role not in SCHOOL_ROLES:
        raise RecordError(_("only school roles can be changed, to another school role"))
    if role == user.role:
        raise RecordError(_("the user already has this role"))
    if user.role == SCHOOL_ADMIN:
        await _keep_an_admin(conn, user)
    await conn.execute(sa.update(admin_users).where(_u.user_id == user.user_id)
                       .values(role=role))
    changed = await get_user(conn, user.user_id)
    assert changed is not None
    return changed


async def set_active(conn: AsyncConnection, user: StaffUser, active: bool) -> StaffUser:
    """Deactivate (sessions end, links void) or reactivate (signs in with the old password)."""
    if user.active == active:
        raise RecordError(_("the user is already active") if active else
                          _("the user is already inactive"))
    now = utcnow()
    if not active:
        await _keep_an_admin(conn, user)
        await end_sessions(conn, user.user_id)
        await _void_links(conn, user.user_id, now)
    await conn.execute(sa.update(admin_users).where(_u.user_id == user.user_id).values(
        active=active, deactivated_at=None if active else now))
    changed = await get_user(conn, user.user_id)
    assert changed is not None
    return changed


async def end_sessions(conn: AsyncConnection, user_id: str, *,
                       keep_session: str | None = None) -> int:
    """Delete the user's sessions (but ``keep_session``, a session hash); how many ended."""
    stmt = sa.delete(admin_sessions).where(admin_sessions.c.user_id == user_id)
    if keep_session is not None:
        stmt = stmt.where(admin_sessions.c.session_hash != keep_session)
    return (await conn.execute(stmt)).rowcount or 0


async def _void_links(conn: AsyncConnection, user_id: str, now: datetime) -> None:
    await conn.execute(sa.update(password_resets).where(
        _r.user_id == user_id, _r.used_at.is_(None), _r.expires_at > now).values(
        expires_at=now))


async def new_link(conn: AsyncConnection, user: StaffUser, *, created_by: str | None,
                   ttl: timedelta) -> tuple[str, datetime]:
    """A one-time set-password token for an active user, and when it expires; the user's
    earlier unused links stop working."""
    if not user.active:
        raise RecordError(_("the user is inactive: reactivate them first"))
    now = utcnow()
    await _void_links(conn, user.user_id, now)
    token = secrets.token_urlsafe(32)
    expires = now + ttl
    await conn.execute(sa.insert(password_resets).values(
        token_hash=token_hash(token), user_id=user.user_id, created_by=created_by,
        created_at=now, expires_at=expires))
    return token, expires


def plausible_token(token: str) -> bool:
    """Shaped like ours (43 URL-safe characters): anything else is not looked up."""
    return len(token) == 43 and token.isascii() and all(
        c.isalnum() or c in "-_" for c in token)


async def link_user(conn: AsyncConnection, token: str) -> tuple[str, StaffUser | None]:
    """``("ok", user)``, ``("gone", None)`` for a used, expired or voided link or an inactive
    user, ``("unknown", None)`` for a token that was never made."""
    if not plausible_token(token):
        return "unknown", None
    row = (await conn.execute(sa.select(_r.user_id, _r.used_at, _r.expires_at).where(
        _r.token_hash == token_hash(token)))).first()
    if row is None:
        return "unknown", None
    user = await get_user(conn, row.user_id)
    if row.used_at is not None or row.expires_at <= utcnow() or user is None or not user.active:
        return "gone", None
    return "ok", user


async def use_link(conn: AsyncConnection, token: str, password_hash: str) -> StaffUser | None:
    """Set the password through a link, once: the link is marked used by a conditional
    update, so of two submissions racing only one sets it. None when the link no longer
    works."""
    state, user = await link_user(conn, token)
    if state != "ok" or user is None:
        return None
    now = utcnow()
    taken = await conn.execute(sa.update(password_resets).where(
        _r.token_hash == token_hash(token), _r.used_at.is_(None), _r.expires_at > now)
        .values(used_at=now))
    if taken.rowcount != 1:
        return None
    await set_password(conn, user.user_id, password_hash)
    return user


async def set_password(conn: AsyncConnection, user_id: str, password_hash: str, *,
                       keep_session: str | None = None) -> None:
    """New argon2 hash and ``password_changed_at``; every other session of the user ends, and
    any link still open is voided (a password just chosen should not be replaceable by an
    older link)."""
    now = utcnow()
    await conn.execute(sa.update(admin_users).where(_u.user_id == user_id).values(
        password_hash=password_hash, password_changed_at=now))
    await end_sessions(conn, user_id, keep_session=keep_session)
    await _void_links(conn, user_id, now)


async def unusable_hash() -> str:
    """The hash a new user starts with: of a random password nobody is shown."""
    return await off_loop(hash_password, secrets.token_urlsafe(32))
