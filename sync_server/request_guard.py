"""What a client sends before any handler sees it: headers, paths, forms and body encodings.

Every check here answers a request the handlers could not serve with a clean 4xx instead of
a 500 and a traceback (issue 11). One rule for text, :func:`shared.protocol.text_problem`
(no NUL, valid UTF-8), covers what the handlers read outside JSON bodies; JSON bodies get the
same rule from the wire models' ``Text`` type.

- **Headers**: aiohttp turns bytes that are not UTF-8 into lone surrogates, which crash the
  first ``.encode()`` (a token hash, a signature check, a cookie compare, a database write).
  A request carrying such a header, or a NUL, is refused with 400, on every path.
- **Paths** with a NUL (``%00``) are refused everywhere; **query strings and forms** outside
  the API too (admin filters and fields reach SQL as text). The API's one query value, the
  snapshot cursor, is opaque: a cursor that does not decode gives a full snapshot (spec).
- **Body encodings**: the app reads bodies as sent (``auto_decompress`` off, see
  ``create_app``) and :func:`read_body` decodes them for the device API and the webhook:
  identity, and gzip or deflate that really are (at most 8 MiB once decoded); any other
  coding is 415, a body that does not decode 400. Browsers never compress a form, so the
  console refuses any coding with 400.

Refusals are aiohttp's HTTP errors with words: ``problems_middleware`` (which wraps this
one) turns them into problem+json on the API; other paths get them as a plain page.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable

from aiohttp import web

from shared.protocol import MAX_BODY_BYTES, text_problem

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# Content codings the API decodes, with zlib's window bits (deflate is chosen per body).
_CODINGS = {"gzip": 31, "x-gzip": 31, "deflate": 0}


@web.middleware
async def request_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    for name, value in request.headers.items():
        if text_problem(value):  # the value is never echoed: it may be a token
            raise web.HTTPBadRequest(
                text=f"the {name} header is not valid UTF-8 text or contains NUL")
    if text_problem(request.path):
        raise web.HTTPBadRequest(text="the path contains a NUL character")
    if not is_api(request):
        await _check_page_request(request)
    return await handler(request)


async def _check_page_request(request: web.Request) -> None:
    """Query strings and forms of the console (and anything else not under /api/)."""
    for key, value in request.query.items():
        if text_problem(key) or text_problem(value):
            raise web.HTTPBadRequest(text="the address contains a NUL character")
    if not request.body_exists:
        return
    if _codings(request):
        raise web.HTTPBadRequest(text="a form must be sent without Content-Encoding")
    if request.content_type not in FORM_TYPES:
        return
    try:
        form = await request.post()
    except web.HTTPException:
        raise
    except (ValueError, LookupError, AssertionError) as exc:  # undecodable, bad charset or parts
        raise web.HTTPBadRequest(text="the form could not be read") from exc
    for key, field in form.items():
        words = field if isinstance(field, str) else getattr(field, "filename", None) or ""
        if text_problem(key) or text_problem(words):
            raise web.HTTPBadRequest(text=f"the form field {key[:40]!r} contains a NUL "
                                          "character or text that is not UTF-8")


async def read_body(request: web.Request) -> bytes:
    """The body of an API request, decoded from its Content-Encoding (see the module doc)."""
    codings = _codings(request)
    if len(codings) > 1 or any(c not in _CODINGS for c in codings):
        raise web.HTTPUnsupportedMediaType(
            text="Content-Encoding not supported: send the body as is, or compressed once "
                 "with gzip or deflate")
    raw = await request.read()
    return _decompress(raw, codings[0]) if codings else raw


def _codings(request: web.Request) -> list[str]:
    header = request.headers.get("Content-Encoding", "")
    return [c for c in (p.strip().lower() for p in header.split(",")) if c and c != "identity"]


def _decompress(raw: bytes, coding: str) -> bytes:
    bits = _CODINGS[coding] or (15 if raw[:1] and raw[0] & 0x0F == 8 else -15)
    stream = zlib.decompressobj(bits)
    try:
        body = stream.decompress(raw, MAX_BODY_BYTES + 1)
    except zlib.error:
        body = b""
        stream = zlib.decompressobj(bits)  # not at eof: refused below
    if len(body) > MAX_BODY_BYTES or stream.unconsumed_tail:
        raise web.HTTPRequestEntityTooLarge(MAX_BODY_BYTES, len(body))
    if not stream.eof or stream.unused_data:
        raise web.HTTPBadRequest(text=f"the body is not one complete {coding} stream, as its "
                                      "Content-Encoding says")
    return body


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")
