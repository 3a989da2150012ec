"""What a one-sale push costs in statements, and that the reads it saves are never stale.

At lunch rush the server's CPU goes on per-statement work (issue 14, docs/server.md): a
push reads its school's calendar once (memo per process, checked under the lock), the
settings with the device row's lock, the time zone for the rollups from those settings, the
prices with their products, and ``acked_seq`` is worked out from the push's own seqs when
nothing was stored above it. Counted at the cursor on both databases.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from sync_server.keys import engine_key
from sync_server.storage.schema import sales, schools
from sync_server.storage.schema_rollups import sales_item_days

from .helpers import SentStatements, enroll, push, sale

# Transaction control aside: the token; the batch's refs and seqs before the lock; under it
# the device (with the settings), wallets, bracelets, cashiers, restrictions, prices; the
# version bump; sales, seqs, postings, day nets, balances, item rollup, the device row.
ONE_SALE_PUSH = 17


@pytest.fixture
async def token(client: Any, demo: dict[str, Any]) -> str:
    return str((await enroll(client, demo["schools"][0]["enrollment_code"]))["device_token"])


async def test_a_one_sale_push_runs_seventeen_statements(
        client: Any, demo: dict[str, Any], token: str) -> None:
    school = demo["schools"][0]
    await push(client, token, [sale(school, 1)])  # the calendar is now known to this process
    sent = SentStatements(client.server.app[engine_key])
    try:
        answer = await push(client, token, [sale(school, 2, wallet=2)])
    finally:
        sent.close()
    assert answer["results"][0]["status"] == "applied"
    assert (answer["acked_seq"], answer["missing_seqs"]) == (2, [])
    assert len(sent.statements) == ONE_SALE_PUSH, "\n".join(sent.statements)
    school_reads = [s for s in sent.statements if re.search(r"FROM schools\b", s)]
    assert school_reads == [], school_reads  # settings come with the device row's lock
    assert not [s for s in sent.statements if "device_seqs.seq >" in s]
    assert not [s for s in sent.statements if re.match(r"SELECT pg_notify", s)]


async def test_a_push_after_a_gap_reads_the_stored_seqs(
        client: Any, demo: dict[str, Any], token: str) -> None:
    """With seqs stored above acked_seq (a gap), acked_seq is worked out from the database."""
    school = demo["schools"][0]
    gapped = await push(client, token, [sale(school, 1), sale(school, 3)])
    assert (gapped["acked_seq"], gapped["missing_seqs"]) == (1, [2])
    sent = SentStatements(client.server.app[engine_key])
    try:
        filled = await push(client, token, [sale(school, 2)])
    finally:
        sent.close()
    assert (filled["acked_seq"], filled["missing_seqs"]) == (3, [])
    assert len([s for s in sent.statements if "device_seqs.seq >" in s]) == 1


async def test_a_time_zone_changed_between_pushes_is_used_at_once(
        client: Any, demo: dict[str, Any], token: str) -> None:
    """The process remembers the calendar of the last push; a school moved to another time
    zone meanwhile gets its sale's business day and rollup hour in the new zone."""
    school = demo["schools"][0]
    await push(client, token, [sale(school, 1)])  # remembers Asia/Riyadh
    engine = client.server.app[engine_key]
    async with engine.begin() as conn:
        await conn.execute(sa.update(schools).where(schools.c.school_id == school["school_id"])
                           .values(timezone="UTC"))
    now = datetime.now(UTC)
    evening = now.replace(hour=21, minute=30, second=0, microsecond=0)
    if evening > now - timedelta(minutes=1):
        evening -= timedelta(days=1)  # 21:30 UTC is 00:30 the next day in Riyadh
    late = sale(school, 2, items=(4,), created_at=evening)
    answer = await push(client, token, [late])
    assert answer["results"][0]["status"] == "applied"
    async with engine.connect() as conn:
        day = (await conn.execute(sa.select(sales.c.business_day)
                                  .where(sales.c.ref == late["ref"]))).scalar_one()
        hours = (await conn.execute(
            sa.select(sales_item_days.c.hour)
            .where(sales_item_days.c.school_id == school["school_id"],
                   sales_item_days.c.business_day == day,
                   sales_item_days.c.product_id == late["lines"][0]["product_id"]))).scalars()
        found = set(hours)
    assert day == evening.date().isoformat()
    assert found == {21}
