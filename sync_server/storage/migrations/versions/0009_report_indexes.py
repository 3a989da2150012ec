"""Indexes for the reports and the console's date filters on a school year of data (issue 15)

Measured on one school's year (1,500 students, about 1.2 million sales; benchmarks/year.py):
everything that asks for a school day or a range of them (the dashboard's fortnight, the Z
report, the sales breakdown, the sales list filtered by dates, a month's CSV) walked the
school's whole history in ``ix_sales_school_received`` order and filtered ``business_day``
row by row; balances at a date summed the postings through a full scan of the journal; the
period's reversals and console top-ups scanned ``money_ops``. Each now reads only the rows it
reports:

- ``ix_sales_school_day``: sales of a school by ``business_day``;
- ``ix_postings_school_posted``: the journal of a school by ``posted_at`` (balances replayed
  to or back from a date);
- ``ix_money_ops_school_created``: money operations of a school by time.

Plain CREATE INDEX: it holds a write lock on the table while it builds. Building them on the
year's data takes the time given in docs/upgrading.md; PostgreSQL could build them
CONCURRENTLY outside the migration's transaction, which Alembic's run here does not do.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_sales_school_day", "sales", ["school_id", "business_day"])
    op.create_index("ix_postings_school_posted", "postings", ["school_id", "posted_at"])
    op.create_index("ix_money_ops_school_created", "money_ops", ["school_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_money_ops_school_created", table_name="money_ops")
    op.drop_index("ix_postings_school_posted", table_name="postings")
    op.drop_index("ix_sales_school_day", table_name="sales")
