"""Opening database transactions the same way from every handler (admin console, webhook).

Writers queue on the in-process SQLite write lock when there is one (SQLite allows one writer;
queueing in-process beats spinning on busy_timeout). Readers ask for a ``readonly`` connection:
the SQLite engine then begins DEFERRED instead of IMMEDIATE, so a page view never takes the
write lock and never waits behind a sales push.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from .keys import engine_key, write_lock_key


@asynccontextmanager
async def writing(app: web.Application) -> AsyncIterator[AsyncConnection]:
    async with app.get(write_lock_key) or nullcontext(), app[engine_key].begin() as conn:
        yield conn


@asynccontextmanager
async def reading(app: web.Application) -> AsyncIterator[AsyncConnection]:
    async with app[engine_key].connect() as conn:
        await conn.execution_options(readonly=True)
        yield conn
