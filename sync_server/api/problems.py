"""One function builds every JSON error, and one middleware turns failures into problems.

Every error the API returns is ``application/problem+json`` (RFC 9457). aiohttp's own HTTP
errors (404, 405, 413 from ``client_max_size``) are converted too, so no HTML error page ever
reaches a terminal. Unexpected exceptions are logged with a traceback and answered with a
generic 500 that leaks nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from shared.problems import PROBLEM_CONTENT_TYPE, pointer_from_loc, problem

from ..access_log import loggable_target
from ..request_guard import is_api, read_body

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ProblemError(Exception):
    """Raise from a handler to answer with a problem document."""

    def __init__(self, status: int, slug: str, title: str, detail: str | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(title)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail
        self.headers, self.extra = headers or {}, extra


def problem_response(status: int, slug: str, title: str, detail: str | None = None, *,
                     errors: list[dict[str, str]] | None = None,
                     headers: dict[str, str] | None = None, **extra: Any) -> web.Response:
    body = problem(status, slug, title, detail, errors, **extra)
    return web.Response(status=status, text=json.dumps(body), content_type=PROBLEM_CONTENT_TYPE,
                        headers=headers)


def validation_response(exc: ValidationError) -> web.Response:
    errors = [{"pointer": pointer_from_loc(tuple(e["loc"])), "message": e["msg"]}
              for e in exc.errors(include_url=False, include_input=False)[:50]]
    return problem_response(422, "validation", "Request body does not match the schema",
                            f"{exc.error_count()} problem(s) in the request body", errors=errors)


async def parse_body(request: web.Request, model: type[M]) -> M:
    """Read and validate a JSON body strictly; raises ValidationError (-> 422).

    Parsing the raw bytes with pydantic's JSON parser keeps strict types meaningful (a JSON
    float is never taken as money) and is faster than json.loads + validate.
    """
    return validate_json(await read_body(request), model, "the body must be a JSON object")


def validate_json(raw: bytes, model: type[M], detail: str | None = None) -> M:
    """Validate bytes already read; a body that is not JSON at all is its own 422."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise ProblemError(422, "validation", "Request body is not valid JSON",
                               detail) from None
        raise


_HTTP_SLUGS = {400: "bad-request", 404: "not-found", 405: "method-not-allowed",
               413: "too-large", 415: "unsupported-media-type"}


def _http_detail(exc: web.HTTPException) -> str | None:
    """The words an HTTP error was raised with (``request_guard``'s say what was wrong), not
    aiohttp's default ``"404: Not Found"``; a 413 always says the limit."""
    if exc.status == 413:
        return "request body larger than 8 MiB"
    words = exc.text or ""
    return None if not words or words.startswith(f"{exc.status}:") else words[:300]


@web.middleware
async def problems_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ProblemError as exc:
        return problem_response(exc.status, exc.slug, exc.title, exc.detail, headers=exc.headers,
                                **exc.extra)
    except ValidationError as exc:
        return validation_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400 or not is_api(request):
            raise
        slug = _HTTP_SLUGS.get(exc.status, "http-error")
        return problem_response(exc.status, slug, exc.reason, _http_detail(exc))
    except Exception:
        log.exception("unhandled error on %s %s", request.method,
                      loggable_target(request.raw_path))
        if not is_api(request):
            raise
        return problem_response(500, "internal", "Internal server error",
                                "the error was logged on the server")
