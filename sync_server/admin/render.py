"""Rendering pages, one-shot messages after a redirect, and reading typed form fields.

After every successful POST the browser is redirected (POST/redirect/GET) so a reload never
repeats an action; the outcome travels in a short-lived HttpOnly cookie, not in the URL.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlencode

import aiohttp_jinja2
import sqlalchemy as sa
from aiohttp import web
from multidict import MultiDictProxy

from shared.money import exponent, parse_major

from ..i18n import _
from .scope import admin_key, school_key
from .words import word

FLASH_COOKIE = "pos_flash"
PAGE_SIZE = 50  # rows per page of every paged list
MAX_AMOUNT = 10**9  # minor units; a typo guard, far above any real top-up or setting

T = TypeVar("T")


class FormError(ValueError):
    """A form value a person typed wrongly; shown back to them."""


class Refused(Exception):
    """Raise inside a write transaction to roll it back and redirect with an error message."""

    def __init__(self, back: str, message: str) -> None:
        super().__init__(message)
        self.back, self.message = back, message


def render(request: web.Request, template: str, context: dict[str, Any],
           status: int = 200) -> web.Response:
    flash = request.cookies.get(FLASH_COOKIE)
    ctx = {"admin": request.get(admin_key), "school": request.get(school_key),
           "flash": _read_flash(flash), "path": request.path, "query": request.query,
           "request_path": str(request.rel_url),
           "query_with_lang": lambda code: query_with(request, lang=code), **context}
    response = aiohttp_jinja2.render_template(template, request, ctx, status=status)
    if flash:
        response.del_cookie(FLASH_COOKIE, path="/admin")
    return response


def _read_flash(raw: str | None) -> dict[str, str] | None:
    if not raw:
        return None
    kind, _, text = unquote(raw).partition(":")
    return {"kind": "error" if kind == "err" else "ok", "text": text[:300]}


def redirect(location: str, message: str | None = None, *, error: bool = False) -> web.Response:
    """303 to ``location`` (always a path of ours) with an optional one-shot message.

    Locations are often built from a path's own parts (``/admin/sales/{ref}``), which may hold
    any decoded character: whatever a URL does not allow is percent-encoded, so a CR/LF can
    never break the header (aiohttp would drop the connection)."""
    if not location.startswith("/admin"):
        location = "/admin/"
    location = quote(location, safe="/?&=%#:;,+@!$'()*~-._")
    response = web.Response(status=303, headers={"Location": location})
    if message:
        response.set_cookie(FLASH_COOKIE, quote(("err:" if error else "ok:") + message[:300]),
                            path="/admin", httponly=True, samesite="Lax", max_age=60)
    return response


def text(form: MultiDictProxy[Any], name: str, *, max_len: int = 200,
         required: bool = True, label: str | None = None) -> str:
    value = form.get(name, "")
    value = value.strip() if isinstance(value, str) else ""
    label = label or word(name)
    if required and not value:
        raise FormError(_("%(field)s is required", field=label))
    if len(value) > max_len:
        raise FormError(_("%(field)s is longer than %(most)d characters", field=label,
                          most=max_len))
    return value


def money(form: MultiDictProxy[Any], name: str, currency: str, *, max_len: int,
          error: str, maximum: int = MAX_AMOUNT, signed: bool = False,
          prefixed: bool = False) -> int:
    """A required amount typed in major units, in minor units (parsed exactly).

    In range means zero up to ``maximum``, or with ``signed`` non-zero of either sign and at
    most ``maximum`` in size; out of range is a :class:`FormError` saying ``error``. A missing
    or unparsable value is a FormError with the reader's own message, after the field's label
    when ``prefixed``.
    """
    typed = text(form, name, max_len=max_len)  # its FormError is already in the reader's words
    try:
        amount = parse_major(typed, currency)
    except ValueError as exc:
        said = amount_problem(exc, typed, currency)
        raise FormError(f"{word(name)}: {said}" if prefixed else said) from None
    if (amount == 0 or abs(amount) > maximum) if signed else not 0 <= amount <= maximum:
        raise FormError(error)
    return amount


def amount_problem(exc: ValueError, typed: str, currency: str) -> str:
    """shared.money's refusal of a typed amount in the page's language (it speaks English:
    the till and the CLI use it too)."""
    if "decimals" in str(exc):
        return _("%(currency)s amounts have at most %(n)d decimals", currency=currency,
                 n=exponent(currency))
    return _("'%(text)s' is not an amount", text=typed[:40])


def idem_key(form: MultiDictProxy[Any]) -> str:
    """The money form's idempotency key (see ``money_key`` in macros.html). A form posted
    without one (a script) gets a fresh key: it is then never a replay."""
    value = form.get("idem_key", "")
    if isinstance(value, str) and 8 <= len(value) <= 64 and value.isascii():
        return "form:" + value
    return "form:" + secrets.token_urlsafe(18)


def whole_number(value: object) -> int | None:
    """A count or row number from a path or a form, or None: ASCII digits only (``'²'`` passes
    ``str.isdigit`` and then fails ``int``) and small enough for a BIGINT column (a 20-digit
    number fails in PostgreSQL and SQLite)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def page_number(request: web.Request) -> int:
    try:
        return max(1, min(int(request.query.get("page", "1")), 100_000))
    except ValueError:
        return 1


def page_window(request: web.Request) -> tuple[int, int]:
    """``(limit, offset)`` for the page asked for: one row more than is shown, which tells
    whether there is a next page."""
    return PAGE_SIZE + 1, (page_number(request) - 1) * PAGE_SIZE


def paged(stmt: sa.Select[Any], request: web.Request) -> sa.Select[Any]:
    limit, offset = page_window(request)
    return stmt.limit(limit).offset(offset)


def page_context(request: web.Request, fetched: Sequence[T]) -> dict[str, Any]:
    """What the ``pager`` macro needs, plus the page's ``rows``, from the rows fetched through
    :func:`page_window` (or :func:`paged`)."""
    page = page_number(request)
    return {"rows": fetched[:PAGE_SIZE], "has_more": len(fetched) > PAGE_SIZE, "page": page,
            "qs_prev": query_with(request, page=page - 1),
            "qs_next": query_with(request, page=page + 1)}


def query_with(request: web.Request, **changes: Any) -> str:
    """The current query string with some values replaced (paging links, export link)."""
    params = {k: v for k, v in request.query.items() if v != ""}
    params.update({k: str(v) for k, v in changes.items() if v is not None})
    return urlencode(params)


def parse_day(value: str | None) -> str | None:
    """``YYYY-MM-DD`` or None; anything else is ignored rather than an error page.

    Days in the calendar's first and last years are ignored too: a filter turns a day into
    the instants of its start and end in the school's time zone, which for 0001-01-01 or
    9999-12-31 fall outside what Python and the databases can hold (a 500)."""
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        return None
    return day.isoformat() if 1 < day.year < 9999 else None
