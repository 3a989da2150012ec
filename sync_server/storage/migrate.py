"""Run Alembic migrations programmatically, on the same async engine the server uses."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from .engine import create_engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


async def upgrade(url: str, revision: str = "head") -> str | None:
    """Apply pending migrations; returns the revision the database is at afterwards."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(alembic_config(c), revision))
            return await conn.run_sync(_current)
    finally:
        await engine.dispose()


async def pending(engine: AsyncEngine) -> list[str]:
    """Revisions not yet applied to the database behind ``engine`` (the app and the CLI refuse
    to work on an old schema; ``migrate`` and ``serve`` apply them)."""
    async with engine.connect() as conn:
        current = await conn.run_sync(_current)
    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in script.iterate_revisions("head", current)]


def _current(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
