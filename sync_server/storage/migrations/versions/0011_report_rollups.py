"""Report rollups maintained by the ledger (issue 15)

- ``sales_item_days``: net quantity and amount per (school, business day, local hour,
  product, name as sold); the breakdown report reads it instead of expanding every sale's
  JSON lines.
- ``wallet_day_nets``: net balance change per (wallet, school-local day of ``posted_at``);
  balances at a past date read it instead of replaying the postings.

Both are backfilled here from the sales, admin reversals and postings with set-based
``INSERT ... SELECT`` per school (its time zone's offsets as a CASE, as reports/local_time.py
does), and from then on written in the same transaction as the ledger rows they summarise.
The backfill's SELECTs are sync_server/reports/rollup_source.py, the same ones
``audit-ledger`` compares the rollups with: one definition of what the rollups hold.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sync_server.reports import rollup_source
from sync_server.storage.schema import schools
from sync_server.storage.schema_rollups import sales_item_days, wallet_day_nets

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "sales_item_days",
        sa.Column("school_id", _ID, primary_key=True),
        sa.Column("business_day", sa.String(10), primary_key=True),
        sa.Column("hour", sa.SmallInteger, primary_key=True),
        sa.Column("product_id", _ID, primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "wallet_day_nets",
        sa.Column("wallet_id", _ID, primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("school_id", _ID, nullable=False),
        sa.Column("net", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_wallet_day_nets_school_day", "wallet_day_nets",
                    ["school_id", "day", "wallet_id", "net"])
    _backfill()


def _backfill() -> None:
    conn = op.get_bind()
    dialect = conn.dialect.name
    for school_id, timezone in conn.execute(sa.select(schools.c.school_id, schools.c.timezone)):
        period = rollup_source.covering(
            timezone, [conn.execute(stmt).one() for stmt in rollup_source.extents(school_id)])
        if period is None:
            continue
        conn.execute(sales_item_days.insert().from_select(
            rollup_source.ITEM_COLUMNS, rollup_source.item_days(school_id, period, dialect)))
        conn.execute(wallet_day_nets.insert().from_select(
            rollup_source.NET_COLUMNS, rollup_source.wallet_nets(school_id, period, dialect)))


def downgrade() -> None:
    op.drop_index("ix_wallet_day_nets_school_day", table_name="wallet_day_nets")
    op.drop_table("wallet_day_nets")
    op.drop_table("sales_item_days")
