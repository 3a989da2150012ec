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

from sync_server import records
from sync_server.keys import engine_key
from sync_server.ledger import lookups
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import (
    cashiers,
    credentials,
    products,
    sales,
    schools,
    wallets,
)
from sync_server.storage.schema_rollups import sales_item_days

from .helpers import SentStatements, enroll, lift_a_restriction, push, sale

# Transaction control aside: the token; the batch's refs and seqs before the lock; under it
# the device (with the settings), wallets, bracelets, cashiers, restrictions, prices; the
# version bump; sales, seqs, postings, day nets, balances, item rollup, the device row. On
# PostgreSQL bracelets, cashiers, restrictions and prices are one statement
# (ledger/lookups.py); SQLite has no round trips to save.
ONE_SALE_PUSH = {"sqlite": 17, "postgresql": 14}


@pytest.fixture
async def token(client: Any, demo: dict[str, Any]) -> str:
    return str((await enroll(client, demo["schools"][0]["enrollment_code"]))["device_token"])


async def test_a_one_sale_push_runs_seventeen_statements_fourteen_on_postgresql(
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
    dialect = client.server.app[engine_key].dialect.name
    assert len(sent.statements) == ONE_SALE_PUSH[dialect], "\n".join(sent.statements)
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


@pytest.mark.postgres
async def test_postgresql_looks_up_in_one_statement_what_the_plain_reads_find(
        pg_database: tuple[str, dict[str, Any]]) -> None:
    """The push's lookups under its locks (bracelets, cashiers, restrictions, prices) are one
    UNION ALL on PostgreSQL: it must find exactly what the plain statements find, to the
    microsecond of every time, for every value of the school and none of another school's."""
    db_url, demo = pg_database
    mine, other = demo["schools"][0], demo["schools"][1]
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:  # a restriction lifted, a price changed
            await lift_a_restriction(conn, mine)
            await records.update_product(conn, mine["school_id"],
                                         mine["products"][0]["product_id"], price=999)
        async with engine.connect() as conn:
            wanted: dict[str, set[str]] = {"uids": set(), "cashier_ids": set(),
                                           "wallet_ids": set(), "product_ids": set()}
            for school in (mine, other):
                sid = school["school_id"]
                for column, key in ((credentials.c.uid, "uids"),
                                    (cashiers.c.cashier_id, "cashier_ids"),
                                    (wallets.c.wallet_id, "wallet_ids"),
                                    (products.c.product_id, "product_ids")):
                    wanted[key] |= set((await conn.execute(
                        sa.select(column).where(column.table.c.school_id == sid))).scalars())
            args = (conn, mine["school_id"], wanted["uids"], wanted["cashier_ids"],
                    wanted["wallet_ids"], wanted["product_ids"])
            plain, in_one = await lookups.read_one_by_one(*args), await lookups.read_in_one(*args)
    finally:
        await engine.dispose()

    assert in_one.credentials == plain.credentials
    assert any(c.blocked_at is not None for c in plain.credentials.values())
    assert in_one.cashiers == plain.cashiers and plain.cashiers
    spans = {w: sorted(s, key=repr) for w, s in in_one.spans.items()}
    assert spans == {w: sorted(s, key=repr) for w, s in plain.spans.items()}
    assert any(s.until is not None for found in plain.spans.values() for s in found)
    assert in_one.prices == plain.prices
    assert any(len(history) > 1 for history in plain.prices.values())
    theirs = {w["wallet_id"] for w in other["wallets"]}
    assert not theirs & (set(in_one.spans) | {c.wallet_id for c in in_one.credentials.values()})
