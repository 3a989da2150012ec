"""Which language each console page is drawn in, and the switch on every page.

The choice, strongest first: a ``?lang=`` on the address (the login page's links), the
signed-in admin's saved language (``admin_users.language``), the ``pos_lang`` cookie left by
an earlier choice on this browser (so the login page after signing out stays in it), and
last the browser's ``Accept-Language``. Saving is a POST with the session's CSRF token, like
every other change; the login page, having no session, only sets the cookie.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import jinja2
import sqlalchemy as sa
from aiohttp import web

from .. import i18n
from ..keys import config_key
from ..storage.schema import admin_users
from ..transactions import writing
from .render import redirect
from .scope import admin_of

routes = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

LANGUAGE_COOKIE = "pos_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600


def install(env: jinja2.Environment) -> None:
    """Jinja's i18n extension with callables that read the request's language at call time:
    one environment serves every language, and macros imported without context translate
    too. ``newstyle`` escapes the translation and fills ``%(name)s`` placeholders itself."""
    env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda message: i18n.translations(i18n.current_language()).gettext(message),
        lambda singular, plural, n: i18n.translations(i18n.current_language()).ngettext(
            singular, plural, n),
        newstyle=True,
        pgettext=lambda context, message: i18n.translations(
            i18n.current_language()).pgettext(context, message),
        npgettext=lambda context, singular, plural, n: i18n.translations(
            i18n.current_language()).npgettext(context, singular, plural, n))
    env.globals.update(current_language=i18n.current_language, text_direction=i18n.direction,
                       language_names=i18n.LANGUAGE_NAMES)


def guess(request: web.Request) -> str:
    """The language before the admin's saved one is known: address, cookie, browser."""
    asked = request.query.get("lang")
    if asked in i18n.LANGUAGES:
        return asked
    cookie = request.cookies.get(LANGUAGE_COOKIE)
    if cookie in i18n.LANGUAGES:
        return cookie
    return i18n.pick_language(request.headers.get("Accept-Language"))


@web.middleware
async def language_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Sets the request's language from :func:`guess`; the session check (inside this) then
    applies the signed-in admin's saved choice. A ``?lang=`` is remembered in the cookie."""
    if not request.path.startswith("/admin") or request.path.startswith("/admin/static/"):
        return await handler(request)
    i18n.set_language(guess(request))
    asked = request.query.get("lang")
    response = await handler(request)
    if asked in i18n.LANGUAGES and asked != request.cookies.get(LANGUAGE_COOKIE):
        _remember(request, response, asked)
    return response


def _remember(request: web.Request, response: web.StreamResponse, lang: str) -> None:
    response.set_cookie(LANGUAGE_COOKIE, lang, path="/admin", httponly=True, samesite="Lax",
                        secure=request.app[config_key].secure_cookies, max_age=COOKIE_MAX_AGE)


@routes.post("/admin/language")
async def choose(request: web.Request) -> web.StreamResponse:
    """Saves the admin's language and goes back to the page the switch was pressed on."""
    admin = admin_of(request)
    form = await request.post()
    lang = form.get("lang")
    back = form.get("next")
    back = back if isinstance(back, str) and back.startswith("/admin") else "/admin/"
    if lang not in i18n.LANGUAGES:
        return redirect(back, i18n._("Unknown language."), error=True)
    assert isinstance(lang, str)
    async with writing(request.app) as conn:
        await conn.execute(sa.update(admin_users).where(admin_users.c.user_id == admin.user_id)
                           .values(language=lang))
    response = redirect(back)
    _remember(request, response, lang)
    return response
