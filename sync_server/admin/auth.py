"""Logging in and out, server-side sessions, CSRF checks and login rate limiting.

Sessions are rows keyed by the SHA-256 of a random cookie token (256 bits), so logout and
deactivating a user take effect at once (deactivation deletes the rows, and a session whose
user is inactive is refused and deleted here too, whichever worker reads it), and a copy of
the database holds nothing that works as a cookie. The cookie is HttpOnly, SameSite=Lax and
Secure unless ``secure_cookies`` is off.
Every POST under ``/admin`` must carry the session's ``csrf_token`` form field (the login form
uses a double-submit cookie, as there is no session yet, signed by the server so a cookie
planted by a neighbouring site does not pass); a foreign ``Origin`` header is refused too.
Failed logins are limited per (account, address) with backstops (``lockout.py``), and a login
for an unknown email still runs one argon2 verification so timing does not reveal which emails
exist. The audit log keeps a failed login's email only when it names an account.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from aiohttp import web

from shared.clock import utcnow
from shared.protocol import text_problem

from .. import i18n
from ..i18n import _
from ..keys import config_key, signing_key_key
from ..secrets import hash_password, off_loop, token_hash, verify_password
from ..signing import sign, signed_by
from ..storage.schema import admin_sessions, admin_users, schools
from ..transactions import reading, writing
from . import auditlog, lockout
from .render import Refused, redirect, render
from .scope import Admin, admin_key, load_school, school_key
from .words import word

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SESSION_COOKIE = "pos_admin"
LOGIN_CSRF_COOKIE = "pos_login_csrf"
IDLE_TIMEOUT = timedelta(minutes=30)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
TOUCH_EVERY = timedelta(seconds=60)
LOGIN_CSRF_MAX_AGE = 3600  # seconds a login form stays usable
# What a failed login's audit row says instead of an email that names no account (which may
# be anything typed into the field: a password, a name, a script).
UNKNOWN_ACCOUNT = "(no such account)"
PUBLIC_PATHS = ("/admin/login",)
# One-time set-password links: the token in the path is the credential (password_links.py).
PUBLIC_PREFIXES = ("/admin/password/reset/",)


_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def _set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str,
                max_age: int | None = None) -> None:
    response.set_cookie(name, value, path="/admin", httponly=True, samesite="Lax",
                        secure=request.app[config_key].secure_cookies, max_age=max_age)


# ------------------------------------------------------------------------- middleware


@web.middleware
async def admin_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Session and CSRF gate for everything under /admin except the login page and assets."""
    path = request.path
    if not (path == "/admin" or path.startswith("/admin/")) or path.startswith("/admin/static/"):
        return await handler(request)
    try:
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return await handler(request)
        admin = await _load_session(request)
        if admin is None:
            target = "/admin/login"
            if request.method == "GET" and path not in ("/admin", "/admin/"):
                target += "?" + urlencode({"next": str(request.rel_url)})
            raise web.HTTPSeeOther(target)
        request[admin_key] = admin
        if admin.language and request.query.get("lang") not in i18n.LANGUAGES:
            i18n.set_language(admin.language)  # an explicit ?lang= on the address wins
        if request.method not in ("GET", "HEAD"):
            await _check_csrf(request, admin.csrf_token)
        if admin.school_id is not None:
            async with reading(request.app) as conn:
                school = await load_school(conn, admin.school_id)
            if school is not None:
                request[school_key] = school
        return await handler(request)
    except Refused as exc:
        return redirect(exc.back, exc.message, error=True)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return render(request, "error.html",
                      {"status": exc.status, "reason": word(exc.reason),
                       "message": exc.text if exc.text and not exc.text.startswith(
                           str(exc.status)) else None}, status=exc.status)


def _bad_csrf() -> str:
    """The refusal's words, in the request's language (so built when refusing)."""
    return _("missing or wrong csrf_token: reload the page and try again")


async def _check_csrf(request: web.Request, expected: str) -> None:
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        raise web.HTTPForbidden(text=_("cross-site request refused"))
    form = await request.post()
    given = form.get("csrf_token")
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), expected.encode()):
        raise web.HTTPForbidden(text=_bad_csrf())


async def _load_session(request: web.Request) -> Admin | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 100:
        return None
    digest = token_hash(token)
    now = utcnow()
    async with reading(request.app) as conn:
        row = (await conn.execute(
            sa.select(admin_sessions, admin_users.c.email, admin_users.c.name,
                      admin_users.c.role, admin_users.c.active, admin_users.c.language,
                      admin_users.c.school_id.label("home_school"))
            .join(admin_users, admin_users.c.user_id == admin_sessions.c.user_id)
            .where(admin_sessions.c.session_hash == digest))).first()
    if row is None:
        return None
    if (not row.active or row.expires_at <= now or row.last_seen_at + IDLE_TIMEOUT <= now):
        async with writing(request.app) as conn:
            await conn.execute(sa.delete(admin_sessions)
                               .where(admin_sessions.c.session_hash == digest))
        return None
    if row.last_seen_at + TOUCH_EVERY <= now:
        async with writing(request.app) as conn:
            await conn.execute(sa.update(admin_sessions)
                               .where(admin_sessions.c.session_hash == digest)
                               .values(last_seen_at=now))
    return Admin(user_id=row.user_id, email=row.email, name=row.name, role=row.role,
                 home_school=row.home_school, picked_school=row.school_id,
                 csrf_token=row.csrf_token, session_hash=digest, language=row.language)


# ------------------------------------------------------------------------- login / logout


@routes.get("/admin/login")
async def login_page(request: web.Request) -> web.StreamResponse:
    return _login_form(request, error=None)


def _login_form(request: web.Request, error: str | None, status: int = 200,
                email: str = "") -> web.Response:
    token = _new_login_token(request.app[signing_key_key])
    response = render(request, "login.html",
                      {"csrf_token": token, "error": error, "email": email,
                       "next": request.query.get("next", "")}, status=status)
    _set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=LOGIN_CSRF_MAX_AGE)
    return response


def _new_login_token(key: bytes) -> str:
    """``nonce.issued.signature``: the login form's field and cookie both hold it."""
    body = f"{secrets.token_urlsafe(18)}.{int(utcnow().timestamp())}"
    return f"{body}.{sign(key, 'login-csrf', body)}"


def _login_token_valid(key: bytes, given: Any, cookie: str) -> bool:
    """The form's token equals the cookie (double submit), and the cookie is one this server
    signed within the last hour: a value planted by a neighbouring site fails the signature."""
    if not isinstance(given, str) or not cookie or not (given.isascii() and cookie.isascii()):
        return False
    if not hmac.compare_digest(given.encode(), cookie.encode()):
        return False
    body, _, signature = cookie.rpartition(".")
    issued = body.rpartition(".")[2]
    if not (issued.isdigit() and len(issued) <= 12):
        return False
    age = utcnow().timestamp() - int(issued)
    return -60 <= age <= LOGIN_CSRF_MAX_AGE and signed_by(key, "login-csrf", body, signature)


@routes.post("/admin/login")
async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    key = request.app[signing_key_key]
    if not _login_token_valid(key, form.get("csrf_token"),
                              request.cookies.get(LOGIN_CSRF_COOKIE, "")):
        raise web.HTTPForbidden(text=_bad_csrf())
    email = str(form.get("email", "")).strip().lower()[:320]
    password = str(form.get("password", ""))[:1000]
    address = lockout.address_key(request.remote)
    async with reading(request.app) as conn:
        user = None if text_problem(email) else (await conn.execute(
            sa.select(admin_users).where(admin_users.c.email == email))).first()
        account = lockout.account_key(key, user.user_id if user else None, email)
        wait = await lockout.retry_after(conn, account, address, utcnow())
    if wait:
        response = _login_form(request, _("Too many failed attempts. Try again in %(wait)s s.",
                                                 wait=wait),
                               status=429, email=email)
        response.headers["Retry-After"] = str(wait)
        return response

    ok = await off_loop(verify_password, user.password_hash if user else _DUMMY_HASH,
                        password)
    if not (ok and user is not None and user.active):
        async with writing(request.app) as conn:
            await lockout.record(conn, account, address, utcnow(), succeeded=False)
            await auditlog.record(conn, request, "login_failed",
                                  school_id=user.school_id if user else None,
                                  target_type="admin_user",
                                  target_id=user.user_id if user else None,
                                  actor_email=user.email if user else UNKNOWN_ACCOUNT)
        log.info("admin login refused from %s", address)
        return _login_form(request, _("Email or password not accepted."), status=401,
                           email=email)

    token = secrets.token_urlsafe(32)
    now = utcnow()
    async with writing(request.app) as conn:
        missed = await lockout.missed_since_last_login(conn, user.user_id, now)
        await lockout.record(conn, account, address, now, succeeded=True)
        zone = (await conn.execute(sa.select(schools.c.timezone).where(
            schools.c.school_id == user.school_id))).scalar_one_or_none() or "UTC"
        await conn.execute(sa.insert(admin_sessions).values(
            session_hash=token_hash(token), user_id=user.user_id,
            csrf_token=secrets.token_urlsafe(32), school_id=None, created_at=now,
            last_seen_at=now, expires_at=now + ABSOLUTE_TIMEOUT))
        await conn.execute(sa.delete(admin_sessions).where(admin_sessions.c.expires_at < now))
        admin = Admin(user.user_id, user.email, user.name, user.role, user.school_id, None,
                      "", "")
        await auditlog.record(conn, request, "login", school_id=user.school_id,
                              target_type="admin_user", target_id=user.user_id, admin=admin)
    nxt = str(form.get("next", ""))
    safe_next = nxt if nxt.startswith("/admin/") and not nxt.startswith("/admin/login") \
        and "//" not in nxt and "\\" not in nxt and nxt.isascii() and nxt.isprintable() \
        else "/admin/"  # a CR/LF would break the Location header (and drop the connection)
    response = redirect(safe_next, _missed_text(missed, zone), error=missed is not None)
    _set_cookie(request, response, SESSION_COOKIE, token)
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/admin")
    return response


def _missed_text(missed: lockout.Missed | None, zone: str) -> str | None:
    """What the admin is told on signing in when someone tried their account meanwhile."""
    if missed is None:
        return None
    when = _local(missed.last_at, zone)
    attempts = "1 failed sign-in attempt" if missed.count == 1 else \
        f"{missed.count} failed sign-in attempts"
    return (f"{attempts} since your last sign-in, the last from {missed.last_address} at "
            f"{when}. Not you? Change your password and tell the platform operator.")


def _local(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone) if zone != "UTC" else UTC).strftime(
        "%Y-%m-%d %H:%M %Z")


@routes.post("/admin/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    admin = request[admin_key]
    async with writing(request.app) as conn:
        await conn.execute(sa.delete(admin_sessions)
                           .where(admin_sessions.c.session_hash == admin.session_hash))
        await auditlog.record(conn, request, "logout", school_id=admin.home_school,
                              target_type="admin_user", target_id=admin.user_id)
    response = redirect("/admin/login", _("Signed out."))
    response.del_cookie(SESSION_COOKIE, path="/admin")
    return response
