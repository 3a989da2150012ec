"""Every /api/v1 response the test suite receives is held to the published OpenAPI document.

:func:`watch` puts a middleware outside all of the app's own, so it sees each answer exactly as
a client gets it (problems included). For a documented operation it checks that the status is
one the document lists for it, that the content type is the documented one, and that the body
validates against the documented schema *closed*: every object schema with named properties
refuses properties it does not name. The served document leaves response objects open (a later
v1.x may add fields), but this server must not send a field its own models do not declare, so
the models (and so the document and docs/protocol.md) stay complete.

Violations are collected, not raised (a raise would become a 500 that a test might not look at);
the fixtures that serve the app fail the test when any were collected.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable
from typing import Any

import jsonschema_rs
from aiohttp import web

from sync_server import __version__
from sync_server.api.openapi import build_document

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
violations_key = web.AppKey("contract_violations", list)


def closed(schema: Any) -> Any:
    """A copy where every object schema that names properties forbids the others."""
    if isinstance(schema, dict):
        out = {k: closed(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [closed(v) for v in schema]
    return schema


class Contract:
    """The document's response schemas, compiled once per session."""

    def __init__(self) -> None:
        self.document = build_document(__version__)
        components = closed(copy.deepcopy(self.document["components"]))
        self._validators: dict[tuple[str, str, str, str], Any] = {}
        for path, methods in self.document["paths"].items():
            for method, op in methods.items():
                for status, answer in op["responses"].items():
                    for media, content in answer.get("content", {}).items():
                        root = {**content["schema"], "components": components}
                        self._validators[(path, method, status, media)] = \
                            jsonschema_rs.Draft202012Validator(root, validate_formats=True)

    def problems(self, path: str, method: str, status: int, media: str, body: bytes) -> list[str]:
        """What is wrong with one answer of a documented operation (empty: nothing)."""
        op = self.document["paths"][path][method]
        if str(status) not in op["responses"]:
            return [f"{method.upper()} {path}: status {status} is not in the document"]
        validator = self._validators.get((path, method, str(status), media))
        if validator is None:
            return [f"{method.upper()} {path} {status}: content type {media!r} is not documented"]
        try:
            data = json.loads(body)
        except ValueError:
            return [f"{method.upper()} {path} {status}: the body is not JSON"]
        return [f"{method.upper()} {path} {status}: {error.message} at "
                f"/{'/'.join(map(str, error.instance_path))}"
                for error in list(validator.iter_errors(data))[:5]]


_CONTRACT: Contract | None = None


def contract() -> Contract:
    global _CONTRACT
    if _CONTRACT is None:
        _CONTRACT = Contract()
    return _CONTRACT


def watch(app: web.Application) -> list[str]:
    """Check every answer ``app`` gives to a documented operation; returns the violations list
    (call before the app starts: middlewares are fixed then)."""
    checker = contract()
    found: list[str] = []

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
            if request.path.startswith("/api/"):
                found.append(f"{request.method} {request.path}: {exc.status} escaped as an "
                             "exception, not a problem document")
            raise
        path = request.match_info.route.resource.canonical if request.match_info.route.resource \
            else None
        method = request.method.lower()
        if (path in checker.document["paths"] and method in checker.document["paths"][path]
                and isinstance(response, web.Response) and isinstance(response.body, bytes)):
            body = response.body
            found.extend(checker.problems(path, method, response.status, response.content_type,
                                          body))
        return response

    app.middlewares.insert(0, check)
    app[violations_key] = found
    return found
