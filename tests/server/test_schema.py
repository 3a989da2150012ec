"""The Alembic migrations and the Core table definitions describe the same database."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from sync_server.admin.exceptions import _open_sales, open_counts
from sync_server.storage.engine import create_engine
from sync_server.storage.migrate import alembic_config, upgrade
from sync_server.storage.schema import metadata

from .helpers import enroll, push, sale, void_of


def _head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def _downgrade(db_url: str, revision: str) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), revision))
    finally:
        await engine.dispose()


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


async def test_day_spend_migration_round_trip_keeps_the_spend(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    """0003 drops the running daily totals (they are summed from sales now); going back
    rebuilds them from the sales, net of voids, and going forward again loses nothing."""
    school = demo["schools"][0]
    token = (await enroll(client, school["enrollment_code"]))["device_token"]
    kept, voided = sale(school, 1, wallet=3, items=(0,)), sale(school, 2, wallet=3, items=(1,))
    await push(client, token, [kept, voided, void_of(voided, 3)])

    await _downgrade(db_url, "0002")
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text(
                "SELECT wallet_id, amount FROM wallet_day_spend"))).all()
    finally:
        await engine.dispose()
    assert [tuple(r) for r in rows] == [(school["wallets"][3]["wallet_id"], kept["total"])]

    assert await upgrade(db_url) == _head()
    # The limit still counts the kept sale: 1500 - kept leaves less than product 5's price.
    out = await push(client, token, [sale(school, 4, wallet=3, items=(5,))])
    assert out["results"][0]["flags"] == ["daily_limit_exceeded"]


async def test_open_review_migration_marks_existing_exceptions(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    """0004 marks the rejected and flagged sales already recorded, so the exceptions queue
    shows the same sales after the upgrade as before."""
    school = demo["schools"][0]
    token = (await enroll(client, school["enrollment_code"]))["device_token"]
    clean = sale(school, 1, wallet=1)
    rejected = sale(school, 2, wallet=1, total=1)  # total_mismatch
    flagged = sale(school, 3, wallet=2, uid="04FFFFFFFFFFFF")  # credential_mismatch
    await push(client, token, [clean, rejected, flagged])

    async def open_refs() -> set[str]:
        engine = create_engine(db_url)
        try:
            async with engine.connect() as conn:
                refs = {r.ref for r in await conn.execute(_open_sales(school["school_id"]))}
                counts = await open_counts(conn, school["school_id"])
        finally:
            await engine.dispose()
        assert counts["sales"] == len(refs)
        return refs

    assert await open_refs() == {rejected["ref"], flagged["ref"]}
    await _downgrade(db_url, "0003")
    assert await upgrade(db_url) == _head()
    assert await open_refs() == {rejected["ref"], flagged["ref"]}
