"""daily spend summed from sales: drop wallet_day_spend, index sales by (school, wallet, day)

Every applied sale used to update a running total per wallet and school day, for every
wallet, although only wallets with a daily limit ever read it: a thousand extra random-key
row writes per pushed batch. The spend is now summed from the wallet's sales of that day
when a limited wallet is judged, through this index, which also serves the admin's
"sales of this wallet" (its first two columns are the index it replaces).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_sales_wallet_day", "sales", ["school_id", "wallet_id", "business_day"])
    op.drop_index("ix_sales_school_wallet", table_name="sales")
    op.drop_table("wallet_day_spend")


def downgrade() -> None:
    op.create_table(
        "wallet_day_spend",
        sa.Column("wallet_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("school_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("wallet_id", "day"),
    )
    # Rebuild the running totals the old code expects: applied sales of the day, net of voids
    # (the old code never subtracted admin reversals, so those stay counted, as before).
    op.execute(
        "INSERT INTO wallet_day_spend (wallet_id, day, school_id, amount) "
        "SELECT s.wallet_id, s.business_day, s.school_id, SUM(s.total) FROM sales s "
        "WHERE s.kind = 'sale' AND s.status = 'applied' "
        "AND (s.voided_by IS NULL OR s.voided_by LIKE 'reversal:%') "
        "GROUP BY s.wallet_id, s.business_day, s.school_id")
    op.create_index("ix_sales_school_wallet", "sales", ["school_id", "wallet_id"])
    op.drop_index("ix_sales_wallet_day", table_name="sales")
