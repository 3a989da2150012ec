"""Database-side helpers for server tests (things an admin would do)."""

from __future__ import annotations

from datetime import timedelta

from sync_server.records import create_enrollment_code
from sync_server.storage.engine import create_engine


async def new_code(db_url: str, school_id: str) -> str:
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            return await create_enrollment_code(conn, school_id, timedelta(hours=1))
    finally:
        await engine.dispose()
