"""The event hub and what wakes it, started and stopped with the app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from aiohttp import web

from ..keys import config_key, dialect_key, engine_key, events_hub_key, events_listener_key
from .counter_watch import watch
from .hub import ChangeHub
from .pg_listener import ChangeListener


def setup_events(app: web.Application) -> None:
    """After the database's cleanup context: the hub needs the engine and stops before it."""
    app.cleanup_ctx.append(_running)
    app.on_shutdown.append(_end_streams)


async def _running(app: web.Application) -> AsyncIterator[None]:
    config = app[config_key]
    hub = ChangeHub(app[engine_key])
    app[events_hub_key] = hub
    jobs: list[Coroutine[Any, Any, None]] = [hub.run()]
    if app[dialect_key] == "postgresql":
        listener = ChangeListener(hub, config.db_url, config.events_recheck_seconds)
        app[events_listener_key] = listener
        jobs.append(listener.run())
    else:
        jobs.append(watch(hub, config.events_watch_seconds))
    tasks = [asyncio.create_task(job) for job in jobs]
    yield
    hub.end_all()
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _end_streams(app: web.Application) -> None:
    """Runs before aiohttp waits for handlers to finish: an open stream never finishes by
    itself, so without this every shutdown (gunicorn's SIGTERM) would wait out its timeout."""
    if events_hub_key in app:
        app[events_hub_key].end_all()

