"""The exceptions queue reads the partial index of open exceptions, not the school's history."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from sync_server.admin.exceptions import _open_sales
from sync_server.storage.engine import create_engine


async def test_open_exceptions_query_uses_the_partial_index(db_url: str,
                                                            demo: dict[str, Any]) -> None:
    engine = create_engine(db_url)
    stmt = _open_sales(demo["schools"][0]["school_id"]).limit(200)
    try:
        async with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                # The demo tables are tiny, where a scan is as good as any index; forbid it so
                # the plan shows which index the query's predicate can use.
                await conn.execute(sa.text("SET enable_seqscan = off"))
            compiled = stmt.compile(conn.sync_connection, compile_kwargs={"literal_binds": True})
            plan = "\n".join(str(row) for row in await conn.execute(
                sa.text(("EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN ")
                        + str(compiled))))
    finally:
        await engine.dispose()
    # Either partial index keeps the queue off the school's history: the open exceptions', or
    # (0012) every flagged sale's, which only reviewed exceptions grow. On the demo's tiny
    # tables the planners pick either; a full read of ix_sales_school_* or the table fails.
    assert "ix_sales_open_review" in plan or "ix_sales_flagged" in plan, plan
    assert "SCAN sales" not in plan and "Seq Scan on sales" not in plan, plan
