"""Handlers of the device API: health, enroll, snapshot, sales push."""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa
from aiohttp import web
from pydantic import ValidationError

from shared.clock import utcnow
from shared.ids import new_id
from shared.protocol import (
    MAX_SALES_PER_PUSH,
    EnrollRequest,
    EnrollResponse,
    HealthResponse,
    SalesPush,
)

from .. import __version__, metrics, snapshot
from ..admin.lockout import address_key
from ..keys import (
    config_key,
    delta_cache_key,
    dialect_key,
    engine_key,
    enroll_limiter_key,
    presence_key,
    write_lock_key,
)
from ..ledger.sales import DeviceNotActive, apply_push
from ..secrets import code_hash, new_device_token, token_hash
from ..storage.engine import statement_reads
from ..storage.schema import devices, enrollment_codes, schools
from ..transactions import reading, writing
from .device_auth import authenticate, revoked
from .problems import ProblemError, parse_body

routes = web.RouteTableDef()
# Device names are shown in the console's lists and exported to CSV; a terminal types one at
# enrollment ("Counter 1"), and nothing longer is useful in a table column.
DEVICE_NAME_MAX = 64


def device_name(raw: str) -> str:
    """The name a terminal enrolled with, as it is stored: control and format characters
    (escape sequences, bidi overrides that would show a name reversed in the console,
    zero-width characters) removed, every run of white space one space, no leading or
    trailing space, at most ``DEVICE_NAME_MAX`` characters. Empty when nothing visible is left
    (the enrollment is then refused and the code stays unused)."""
    visible = "".join(" " if ch.isspace() else ch for ch in raw
                      if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf"))
    return " ".join(visible.split())[:DEVICE_NAME_MAX].rstrip()


@routes.get("/api/v1/health")
async def health(request: web.Request) -> web.Response:
    try:
        async with reading(request.app) as conn:
            await conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        raise ProblemError(503, "database-unavailable", "Database unavailable",
                           type(exc).__name__) from exc
    return web.json_response(HealthResponse(
        version=__version__, database=request.app[dialect_key]).model_dump(mode="json"))


@routes.post("/api/v1/devices/enroll")
async def enroll(request: web.Request) -> web.Response:
    limiter = request.app[enroll_limiter_key]
    client = address_key(request.remote)
    async with reading(request.app) as conn:
        wait = await limiter.retry_after(conn, client)
    if wait is not None:
        raise ProblemError(429, "too-many-attempts", "Too many failed enrollment attempts",
                           f"try again in {wait} s", headers={"Retry-After": str(wait)})
    body = await parse_body(request, EnrollRequest)
    name = device_name(body.name)
    if not name:
        raise ProblemError(422, "validation", "Request body does not match the schema",
                           "1 problem(s) in the request body",
                           errors=[{"pointer": "/name", "message": "the name has no visible "
                                    "characters"}])
    now = utcnow()
    device_id, token = new_id("dev"), new_device_token()
    async with writing(request.app) as conn:
        claimed = await conn.execute(
            sa.update(enrollment_codes)
            .where(enrollment_codes.c.code_hash == code_hash(body.enrollment_code),
                   enrollment_codes.c.used_at.is_(None), enrollment_codes.c.expires_at > now)
            .values(used_at=now, device_id=device_id)
            .returning(enrollment_codes.c.school_id))
        school_id = claimed.scalar_one_or_none()
        if school_id is not None:
            await conn.execute(sa.insert(devices).values(
                device_id=device_id, school_id=school_id, name=name,
                token_hash=token_hash(token), status="active", enrolled_at=now,
                last_seen_at=now, app_version=_app_version(request)))
            currency = (await conn.execute(sa.select(schools.c.currency)
                                           .where(schools.c.school_id == school_id))).scalar_one()
    if school_id is None:
        # Unknown, used and expired codes answer alike: no oracle for guessing.
        async with writing(request.app) as conn:
            await limiter.fail(conn, client)
        raise ProblemError(403, "enrollment-refused", "Enrollment code not accepted",
                           "the code is unknown, already used or expired; ask for a new one")
    return web.json_response(EnrollResponse(
        device_id=device_id, device_token=token, school_id=school_id, currency=currency,
        server_time=now).model_dump(mode="json"), status=201)


@routes.get("/api/v1/sync/snapshot")
async def get_snapshot(request: web.Request) -> web.Response:
    # The token check and the snapshot read share one connection: a pull is the most
    # frequent request at lunch rush (a till pulls on every change of its school), and a
    # second checkout cost the pool's work each time. A delta needs no snapshot across its
    # statements (snapshot.py: rows at or below the version read with the token never
    # change), so on PostgreSQL they run without a transaction's BEGIN and ROLLBACK.
    async with statement_reads(request.app[engine_key]) as conn, conn.begin():
        device = await authenticate(request, conn, snapshot.SCHOOL_COLUMNS)
        body = await snapshot.read(conn, device.school_id,
                                   request.query.get("cursor") or None,
                                   school=device.school, cache=request.app[delta_cache_key])
    request.app[presence_key].seen(device.device_id, _app_version(request))
    return web.json_response(body)


@routes.post("/api/v1/sync/sales")
async def push_sales(request: web.Request) -> web.Response:
    try:
        return await _push_sales(request)
    except ProblemError as exc:  # refused pushes count too: a till stuck on 401/413 shows
        metrics.count_refused_push(exc.status)
        raise
    except ValidationError:
        metrics.count_refused_push(422)
        raise


async def _push_sales(request: web.Request) -> web.Response:
    device = await authenticate(request)
    push = await parse_body(request, SalesPush)
    if len(push.sales) > MAX_SALES_PER_PUSH:
        raise ProblemError(413, "too-many-sales", "Too many sales in one push",
                           f"send at most {MAX_SALES_PER_PUSH} sales per request")
    app = request.app
    try:
        with metrics.Timer() as timer:
            outcome = await apply_push(
                app[engine_key], device.school_id, device.device_id, list(push.sales),
                clock_skew=app[config_key].clock_skew,
                write_lock=app.get(write_lock_key))
    except DeviceNotActive:  # revoked between the token check and the push's device lock
        raise revoked() from None
    # An empty push (a till's every cycle) writes nothing; its contact is written in a batch.
    app[presence_key].seen(device.device_id, _app_version(request))
    metrics.count_push(outcome.results, timer.seconds)
    return web.json_response({
        "results": outcome.results,
        "acked_seq": outcome.acked_seq, "missing_seqs": outcome.missing_seqs,
        "server_time": utcnow().isoformat(timespec="milliseconds"),
    })


def _app_version(request: web.Request) -> str | None:
    agent = request.headers.get("User-Agent", "")
    return agent[:100] or None
