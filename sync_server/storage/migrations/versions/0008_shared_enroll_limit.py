"""enroll_failures: failed enrollment attempts, counted in the database (issue 14)

The enrollment limiter counted failures in each server process's memory, so N processes on M
hosts allowed N*M times the guesses per address. Each failed attempt is now a row, and every
process and host counts the same rows, as the admin login lockout already does (0006).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "enroll_failures",
        sa.Column("failure_id", _ID, autoincrement=True, nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("failure_id"),
    )
    op.create_index("ix_enroll_failures_address_at", "enroll_failures", ["address", "at"])
    op.create_index("ix_enroll_failures_at", "enroll_failures", ["at"])


def downgrade() -> None:
    op.drop_index("ix_enroll_failures_at", table_name="enroll_failures")
    op.drop_index("ix_enroll_failures_address_at", table_name="enroll_failures")
    op.drop_table("enroll_failures")
