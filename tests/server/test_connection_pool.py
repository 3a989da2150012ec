"""The server's connection pool keeps what it opened, on both databases.

Under load every request of a worker may hold a connection at once (``pool_capacity``). The
pool used to keep only half of them and close the others ("overflow") as they came back, so a
busy worker opened a new connection for every other checkout: at 500 tills that was 40
PostgreSQL backends forked per second, each preparing every statement again
(benchmarks/fleet.py, 2026-11-28).
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event, text

from sync_server.storage.engine import create_engine, pool_capacity

WAVES = 3


async def test_a_busy_worker_reuses_its_connections(db_url: str) -> None:
    engine = create_engine(db_url)
    capacity = pool_capacity(db_url)
    opened: list[Any] = []
    event.listen(engine.sync_engine, "connect", lambda dbapi, _record: opened.append(dbapi))
    try:
        async def request(everyone_in: asyncio.Barrier) -> None:
            async with engine.connect() as conn:
                await everyone_in.wait()
                assert (await conn.execute(text("SELECT 1"))).scalar() == 1

        for _ in range(WAVES):  # every connection the worker may use, in use at once
            barrier = asyncio.Barrier(capacity)
            await asyncio.wait_for(asyncio.gather(*(request(barrier) for _ in range(capacity))),
                                   30)
        assert len(opened) == capacity
    finally:
        await engine.dispose()
