"""INSERT that does nothing when a unique key already holds the row, on both databases.

Outboxes (webhook events, emails) use it inside the transaction of the change they tell: a
duplicate (the same dedupe key from another process) must neither fail that change nor be
written twice, and catching IntegrityError would abort a PostgreSQL transaction.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


async def insert_once(conn: AsyncConnection, table: sa.Table, values: dict[str, Any]) -> bool:
    """Insert ``values`` unless a unique constraint already has them; True when written."""
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    stmt = dialect.insert(table).values(**values).on_conflict_do_nothing()
    result = await conn.execute(stmt)
    return bool(result.rowcount)
