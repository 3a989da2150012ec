"""``GET /api/v1/sync/events``: a server-sent event stream telling one terminal when to pull.

Authentication comes first, so a missing token is 401 and a revoked device 403 problem+json
before any stream starts. The stream then carries only versions (``event: snapshot``, data
``{"version": "..."}``), never wallet data: the terminal pulls the delta with its own cursor,
through the same authenticated snapshot route as ever. The first event is the current version,
so a terminal that reconnects pulls whatever it missed while away. A ``: ping`` comment every
``events_ping_seconds`` keeps proxies from closing an idle stream, notes the terminal as seen,
and is how a stream whose terminal went away is noticed (the write fails).
"""

from __future__ import annotations

import json

from aiohttp import web

from .. import metrics
from ..events.hub import StreamEnded
from ..keys import config_key, events_hub_key, presence_key
from .device_auth import authenticate
from .problems import ProblemError

routes = web.RouteTableDef()

EVENT_STREAM_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    # nginx buffers proxied responses unless told not to; HAProxy and aiohttp do not.
    "X-Accel-Buffering": "no",
}
PING = b": ping\n\n"


def snapshot_event(version: str) -> bytes:
    return b"event: snapshot\ndata: " + json.dumps({"version": version}).encode() + b"\n\n"


@routes.get("/api/v1/sync/events")
async def events(request: web.Request) -> web.StreamResponse:
    device = await authenticate(request)
    app = request.app
    ping_seconds = app[config_key].events_ping_seconds
    app_version = request.headers.get("User-Agent", "")[:100] or None  # as device_routes
    response = web.StreamResponse(headers=EVENT_STREAM_HEADERS)
    try:
        with app[events_hub_key].subscribe(device.device_id, device.school_id) as stream:
            await response.prepare(request)
            metrics.SSE_STREAMS.inc()
            try:
                _seen(app, device.device_id, app_version)
                while True:
                    version = await stream.next(ping_seconds)
                    if version is None:
                        await response.write(PING)
                        _seen(app, device.device_id, app_version)
                    else:
                        await response.write(snapshot_event(version))
                        metrics.SSE_EVENTS.inc()
            finally:
                metrics.SSE_STREAMS.dec()
    except StreamEnded:  # revoked (a reconnect gets 403) or the server is stopping
        if not response.prepared:
            raise ProblemError(503, "shutting-down", "Server shutting down",
                               "connect again in a moment", headers={
                                   "Retry-After": str(app[config_key].retry_after_seconds)}
                               ) from None
    except ConnectionError:  # the terminal went away; noticed at the next write
        return response
    try:
        await response.write_eof()
    except ConnectionError:
        pass
    return response


def _seen(app: web.Application, device_id: str, app_version: str | None) -> None:
    app[presence_key].seen(device_id, app_version)  # in memory; written in batches
