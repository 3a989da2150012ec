"""The Alembic migrations and the Core table definitions describe the same database."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from sync_server.storage.engine import create_engine
from sync_server.storage.migrate import upgrade
from sync_server.storage.schema import metadata


def test_migrated_database_matches_schema_module(db_factory: Any) -> None:
    url = db_factory.new_empty()

    async def differences() -> list[Any]:
        await upgrade(url)
        engine = create_engine(url)
        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"compare_type": True}), metadata))
        await engine.dispose()
        return list(diff)

    assert asyncio.run(differences()) == []
