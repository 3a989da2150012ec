"""Report rollups maintained by the ledger (issue 15)

- ``sales_item_days``: net quantity and amount per (school, business day, local hour,
  product, name as sold); the breakdown report reads it instead of expanding every sale's
  JSON lines.
- ``wallet_day_nets``: net balance change per (wallet, school-local day of ``posted_at``);
  balances at a past date read it instead of replaying the postings.

Both are backfilled here from the sales, admin reversals and postings with set-based
``INSERT ... SELECT`` per school (its time zone's offsets as a CASE, as reports/local_time.py
does), and from then on written in the same transaction as the ledger rows they summarise.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

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
    # Backfill: filled in below (next commit).


def downgrade() -> None:
    op.drop_index("ix_wallet_day_nets_school_day", table_name="wallet_day_nets")
    op.drop_table("wallet_day_nets")
    op.drop_table("sales_item_days")
