"""Indexes for the sales list's filters on a school year of data (issue 15)

Measured on one school's year (about 1.2 million sales; benchmarks/year.py), SQLite:

- ``ix_sales_day_received`` (school_id, business_day, received_at, ref): a range of days in
  the list's order (newest received first) is sorted from this index alone, then the page's
  rows are read by key: the page of one month 0.2-0.4 s -> about 0.1 s;
- ``ix_sales_flagged`` (school_id, received_at) for flagged sales only (``needs_review``, set
  with a sale's flags and kept when it is reviewed; the open queue's index drops reviewed
  ones): the flagged list and its totals read the few thousand flagged sales, not the year
  (totals 2.6 s -> 13-27 ms).

Plain CREATE INDEX, like 0009: it holds a write lock on ``sales`` while it builds (about
13 s for the two on the SQLite year). Each sale written maintains two more index entries.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_sales_day_received", "sales",
                    ["school_id", "business_day", "received_at", "ref"])
    flagged = sa.text("needs_review")
    op.create_index("ix_sales_flagged", "sales", ["school_id", "received_at"],
                    sqlite_where=sa.text("needs_review = 1"), postgresql_where=flagged)


def downgrade() -> None:
    op.drop_index("ix_sales_flagged", table_name="sales")
    op.drop_index("ix_sales_day_received", table_name="sales")
