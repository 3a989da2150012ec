"""How the server's logs look: ``human`` (one readable line) or ``json`` (one object a line).

A school's log shipper (journald -> Loki, Vector, Filebeat) reads JSON without regexes; a
person at a terminal reads the human line. Both carry the same facts and hide the same
things: every request line goes through :func:`~.access_log.loggable_target`, so a bracelet
UID in a path is masked the same way in both formats, and bodies are never logged. Parents'
email addresses and phone numbers are masked in every record of every handler
(:mod:`.log_masking`), whichever logger wrote it.

Requests get an ID: a sane incoming ``X-Request-ID`` (what a proxy assigned) is kept, any
other is replaced by a new one; the response echoes it, and the JSON access line carries it
with the device (once authenticated), method, masked path, status, duration and peer.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_request import BaseRequest
from pythonjsonlogger.json import JsonFormatter

from .access_log import MaskedAccessLogger, loggable_target
from .log_masking import mask_handlers

HUMAN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REQUEST_ID_HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
request_id_key = web.RequestKey("request_id", str)
device_id_key = web.RequestKey("device_id", str)


def json_formatter() -> logging.Formatter:
    return JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                         rename_fields={"asctime": "time", "levelname": "level",
                                        "name": "logger"},
                         datefmt="%Y-%m-%dT%H:%M:%S%z", json_ensure_ascii=False)


def configure(log_format: str, stream: Any = None) -> logging.Handler:
    """Replace the root logger's handlers with one writing ``log_format`` to ``stream``
    (stderr by default); returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(json_formatter() if log_format == "json"
                         else logging.Formatter(HUMAN_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    mask_handlers(root)
    return handler


@web.middleware
async def request_ids(request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                      ) -> web.StreamResponse:
    """Outermost: every answer, problem documents and redirects included, echoes the ID."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    rid = incoming if _SANE_ID.fullmatch(incoming) else uuid.uuid4().hex
    request[request_id_key] = rid
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers[REQUEST_ID_HEADER] = rid
        raise
    response.headers[REQUEST_ID_HEADER] = rid
    return response


class JsonAccessLogger(MaskedAccessLogger):
    """One access record per request with the request's facts as fields (the JSON formatter
    turns ``extra`` into keys); the message is the masked request line, as in human logs."""

    def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
        try:
            path = loggable_target(request.path_qs)
            self.logger.info("%s %s %s", request.method, path, response.status, extra={
                "request_id": request.get(request_id_key),
                "device_id": request.get(device_id_key),
                "method": request.method, "path": path, "status": response.status,
                "duration_ms": round(time * 1000, 1), "remote": request.remote,
            })
        except Exception:
            self.logger.exception("Error in logging")
