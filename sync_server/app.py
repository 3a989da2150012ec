"""The aiohttp application factory: ``create_app(config)`` and nothing global.

Tests build the real app with a test config (``aiohttp_client(create_app(cfg))``); ``serve``
runs the same app. Resources live in cleanup contexts so they close in reverse order.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import sqlalchemy as sa
from aiohttp import web
from aiohttp_remotes import XForwardedStrict

from shared.protocol import MAX_BODY_BYTES

from . import __version__
from .access_log import MaskedAccessLogger, quiet_malformed_requests
from .admin import setup_admin
from .api.device_routes import routes as device_routes
from .api.event_routes import routes as event_routes
from .api.openapi import setup_openapi
from .api.outages import Outages
from .api.problems import problems_middleware
from .api.webhooks import routes as webhook_routes
from .config import ServerConfig
from .connections import body_deadline
from .events.running import setup_events
from .keys import (
    config_key,
    delta_cache_key,
    dialect_key,
    engine_key,
    enroll_limiter_key,
    presence_key,
    write_lock_key,
)
from .logs import JsonAccessLogger, request_ids
from .mail.sender import mailing
from .metrics import SNAPSHOT_DELTAS, setup_metrics
from .notify.delivery import delivering
from .presence import Presence
from .ratelimit import FailureLimiter
from .reconciliation import reconciling
from .request_guard import request_guard
from .snapshot import DeltaCache
from .storage.engine import create_engine, dialect_of, pool_capacity
from .storage.migrate import pending
from .storage.writer_lock import WriterLock

log = logging.getLogger(__name__)


class SchemaOutOfDate(RuntimeError):
    pass


def create_app(config: ServerConfig) -> web.Application:
    # Bodies are read as sent and decoded by request_guard.read_body, which refuses codings
    # it does not know with 415 (aiohttp's own decoder answers those with a bare 400).
    # handler_args win over a runner's own arguments, so every way of serving this app logs
    # requests with bracelet UIDs and search terms masked (access_log.py).
    quiet_malformed_requests()
    app = web.Application(client_max_size=MAX_BODY_BYTES,
                          handler_args={"auto_decompress": False,
                                        "access_log_class": (
                                            JsonAccessLogger if config.log_format == "json"
                                            else MaskedAccessLogger)},
                          middlewares=[problems_middleware, request_guard])
    # Next inside the problem middleware (so both answer problem+json on the API): a body
    # late by body_timeout is 408 however long it queued, and what the database cannot take
    # now is 503 with Retry-After (api/outages.py).
    outages = Outages(config, pool_capacity(config.db_url, config.db_pool_size))
    app.middlewares.insert(1, outages.middleware)
    app.middlewares.insert(1, body_deadline(config.body_timeout_seconds))
    app[config_key] = config
    app[dialect_key] = dialect_of(config.db_url)
    app[enroll_limiter_key] = FailureLimiter(config.enroll_failures_per_minute)
    app[presence_key] = Presence()
    app[delta_cache_key] = DeltaCache(
        count=lambda source: SNAPSHOT_DELTAS.labels(source).inc())
    if app[dialect_key] == "sqlite":
        app[write_lock_key] = WriterLock(Path(sa.make_url(config.db_url).database or ""))
    if config.trusted_proxies:
        _trust_proxies(app, config.trusted_proxies)
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_presence)  # after the database: its last flush precedes dispose
    app.cleanup_ctx.append(outages.watching)
    if config.gateway_url:  # after the database: stopped before the engine is disposed
        app.cleanup_ctx.append(reconciling)
    app.cleanup_ctx.append(delivering)  # outbound webhooks; after the database, as above
    app.cleanup_ctx.append(mailing)  # email, only with smtp_host; after the database, as above
    app.middlewares.insert(0, request_ids)  # outermost: every answer echoes its ID
    setup_events(app)  # after the database: the hub reads with its engine
    app.add_routes(device_routes)
    app.add_routes(event_routes)
    app.add_routes(webhook_routes)
    setup_metrics(app)
    setup_openapi(app, __version__)
    setup_admin(app)
    return app


def _trust_proxies(app: web.Application, proxies: str) -> None:
    """Behind a TLS proxy every peer is the proxy: without this, one client's failed attempts
    would rate-limit every terminal of the school. aiohttp-remotes rewrites ``request.remote``
    from X-Forwarded-For sent by the listed proxies and refuses anyone else (400), except the
    health endpoint, which monitoring may call directly. Placed inside the problem middleware so
    the refusal is problem+json on the API."""
    trusted = [[p.strip() for p in proxies.split(",") if p.strip()]]
    tool = XForwardedStrict(trusted, white_paths=["/api/v1/health"])
    app.middlewares.insert(1, tool.middleware)


async def _database(app: web.Application) -> AsyncIterator[None]:
    config = app[config_key]
    engine = create_engine(config.db_url, pool_size=config.db_pool_size,
                           pool_timeout=config.queue_timeout_seconds)
    behind = await pending(engine)
    if behind:
        await engine.dispose()
        raise SchemaOutOfDate(
            f"database schema is {len(behind)} migration(s) behind: run `pos-server migrate`")
    app[engine_key] = engine
    yield
    await engine.dispose()
    if write_lock_key in app:
        app[write_lock_key].close()


async def _presence(app: web.Application) -> AsyncIterator[None]:
    async with app[presence_key].flushing(app[config_key].presence_flush_seconds,
                                          app[engine_key], app.get(write_lock_key)):
        yield
