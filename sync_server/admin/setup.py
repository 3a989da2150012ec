"""Wiring the console into the app: templates, static files, middleware, routes, headers.

Everything the console needs is served by this app (one CSS file, no JS framework, no CDN),
and a strict Content-Security-Policy makes that a rule the browser enforces.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import hdrs, web

from shared.ids import mask_uid

from .. import parent_contact
from ..keys import config_key, engine_key, signing_key_key
from ..signing import load_signing_key
from . import (
    account,
    audit,
    auth,
    bracelet_issue,
    bracelet_stock,
    bracelets,
    catalog,
    dashboard,
    devices,
    exceptions,
    formatting,
    imports,
    language,
    password_links,
    payments,
    report_pdfs,
    reports,
    reports_csv,
    roster,
    sales,
    schools,
    settings,
    students,
    users,
    wallets,
    webhook_deliveries,
    webhooks,
    words,
    year_end,
)
from .render import FLASH_COOKIE

HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                "script-src 'self'; frame-ancestors 'none'; form-action 'self'; "
                                "base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def setup_admin(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=jinja2.select_autoescape(default=True), undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.i18n"])
    language.install(env)
    env.filters.update(money=formatting.money, amount=formatting.amount, major=formatting.major,
                       number=formatting.number, when=formatting.when, day=formatting.day,
                       mask=mask_uid, mask_email=parent_contact.mask_email,
                       mask_phone=parent_contact.mask_phone)
    env.globals["lag"] = devices.lag_text
    env.globals["word"] = words.word
    env.globals["new_idem_key"] = new_idem_key
    app.cleanup_ctx.append(_signing_key)  # after the database's: it reads server_secrets
    app.middlewares.append(language.language_middleware)
    app.middlewares.append(auth.admin_middleware)
    app.on_response_prepare.append(_security_headers)
    app.router.add_static("/admin/static", HERE / "static", name="admin-static")
    app.router.add_get("/admin", _to_dashboard)
    # bracelet_issue and bracelet_stock before bracelets: /admin/bracelets/{uid} would
    # otherwise take /admin/bracelets/issue and /admin/bracelets/stock.
    # students before wallets: /admin/wallets/new is a page, not a wallet ID.
    for module in (auth, language, schools, dashboard, sales, exceptions, students, wallets,
                   roster, imports, year_end,
                   bracelet_issue, bracelet_stock, bracelets, devices, catalog, payments,
                   settings, audit, reports, reports_csv, report_pdfs):
        app.add_routes(module.routes)
    for module in (users, password_links, account):
        app.add_routes(module.routes)
    app.add_routes(webhook_deliveries.routes)  # outbound webhooks (admins only)
    app.add_routes(webhooks.routes)


async def _signing_key(app: web.Application) -> AsyncIterator[None]:
    app[signing_key_key] = await load_signing_key(app[engine_key], app[config_key].signing_secret)
    yield


async def _to_dashboard(_request: web.Request) -> web.Response:
    raise web.HTTPFound("/admin/")


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith("/admin"):
        for name, value in SECURITY_HEADERS.items():
            if name == "Cache-Control" and request.path.startswith("/admin/static/"):
                response.headers[name] = "public, max-age=3600"
            else:
                response.headers.setdefault(name, value)
        # The one-shot message cookie can carry an address (the failed sign-in notice): it is
        # Secure whenever the session cookie is, for every redirect at once. aiohttp has
        # already written Set-Cookie headers when this hook runs, so the header is amended.
        if request.app[config_key].secure_cookies:
            cookies = response.headers.getall(hdrs.SET_COOKIE, [])
            if any(c.startswith(FLASH_COOKIE + "=") and "Secure" not in c for c in cookies):
                del response.headers[hdrs.SET_COOKIE]
                for c in cookies:
                    secure = c.startswith(FLASH_COOKIE + "=") and "Secure" not in c
                    response.headers.add(hdrs.SET_COOKIE, c + "; Secure" if secure else c)


def new_idem_key() -> str:
    """A fresh idempotency key for a money form, made each time the form is drawn."""
    return secrets.token_urlsafe(18)

