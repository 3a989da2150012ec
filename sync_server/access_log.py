"""What a log line may say about a request: its path with bracelet UIDs masked, and its query
string without the values.

A bracelet UID is a personal identifier that clones a bracelet, and it is part of admin URLs
(``/admin/bracelets/04A1B2C3D4E580``); search boxes put students' names and numbers in query
strings (``/admin/wallets?q=...``). The access log keeps the shape of every request (which
page, which filters, how long) and none of those values. Every line that names a request goes
through :func:`loggable_target`, the one place that decides.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web import StreamResponse
from aiohttp.web_log import AccessLogger
from aiohttp.web_request import BaseRequest

from shared.ids import mask_uid, normalize_uid

# Query parameters whose values say nothing about a person: page numbers, states and dates.
# Every other value (searches, wallet and student filters, login's ``next``) is dropped.
SHOWN_QUERY_VALUES = frozenset({"page", "status", "state", "flag", "kind", "action", "from",
                                "to"})
HIDDEN = "…"
LINK_PATH = "/admin/password/reset/"  # one-time set-password links


def loggable_target(path_qs: str) -> str:
    """``/admin/bracelets/04A1B2C3D4E580?q=Sara&page=2`` ->
    ``/admin/bracelets/04A1…E580?q=…&page=2``.

    Segments are compared decoded, so a percent-encoded or lower-case UID is masked too; a
    segment that merely looks like a UID (eight digits) is masked as well, which costs the log
    nothing."""
    path, sep, query = path_qs.partition("?")
    if unquote(path).startswith(LINK_PATH):  # the token in such a link is the credential
        path = LINK_PATH + HIDDEN
    masked = "/".join(_segment(s) for s in path.split("/"))
    if not sep:
        return masked
    params = []
    for pair in query.split("&"):
        name, has_value, value = pair.partition("=")
        name = unquote(name)[:40]
        if not has_value:
            params.append(name)
        elif name in SHOWN_QUERY_VALUES and len(value) <= 20 and value.isascii():
            params.append(f"{name}={value}")
        else:
            params.append(f"{name}={HIDDEN}")
    return f"{masked}?{'&'.join(params)}"


def loggable_url(url: str) -> str:
    """A full URL (a Referer) with its path and query made loggable the same way."""
    if url in ("", "-"):
        return url
    parts = urlsplit(url)
    target = loggable_target(parts.path + ("?" + parts.query if parts.query else ""))
    return f"{parts.scheme}://{parts.netloc}{target}" if parts.netloc else target


def _segment(segment: str) -> str:
    try:
        return mask_uid(normalize_uid(unquote(segment)))
    except ValueError:
        return segment


class MaskedAccessLogger(AccessLogger):
    """aiohttp's access logger, with the request line and the Referer made loggable.

    Installed through the app's ``handler_args`` (``create_app``), so ``serve``, every
    ``--workers`` process and the test server all use it whatever format they log."""

    def _format_line(self, request: BaseRequest, response: StreamResponse,
                     time: float) -> Iterable[tuple[str | tuple[str, str], str]]:
        line = super()._format_line(request, response, time)
        if request is None:
            return line
        return [(key, _loggable(key, value, request)) for key, value in line]


def _loggable(key: str | tuple[str, str], value: str, request: BaseRequest) -> str:
    if key == "first_request_line":
        version = request.version
        return (f"{request.method} {loggable_target(request.path_qs)} "
                f"HTTP/{version.major}.{version.minor}")
    if isinstance(key, tuple) and key[1].lower() == "referer":
        return loggable_url(value)
    return value


class MalformedRequestFilter(logging.Filter):
    """aiohttp's own parser refuses malformed HTTP (a NUL or a bare CR in a header) before the
    app sees it, and logs it on ``aiohttp.server`` with a traceback whose message quotes the
    offending line, which may be the sender's own ``Authorization`` header; anyone can send
    thousands a second. Such records become one line that names the kind of error only."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg = "refused a malformed HTTP request from %s (%s)"
            record.args = ((record.args or ("?",))[0] if isinstance(record.args, tuple)
                           else "?", type(exc).__name__)
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_malformed_requests() -> None:
    """Install :class:`MalformedRequestFilter` once on aiohttp's server logger."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequestFilter) for f in logger.filters):
        logger.addFilter(MalformedRequestFilter())
