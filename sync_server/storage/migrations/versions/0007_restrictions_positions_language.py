"""Allergies and item restrictions, button positions, homerooms, each admin's language (v1.1)

``wallet_restrictions`` keeps one row per blocked category, product or allergen of a wallet,
with the time it started and (once lifted) ended, so the server can flag a sale only for what
was blocked *before* the sale was made: a till that sold on an old snapshot is told apart from
one that ignored a restriction it knew of. ``products.allergens`` is a JSON list of lower-case
names; ``products.position`` orders the till's buttons and hotkeys, existing products numbered
by category and name within each school so nothing moves on upgrade. ``admin_users.language``
is the console language a user chose (null: guess from ``Accept-Language``).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)

_products = sa.table("products", sa.column("product_id", sa.String()),
                     sa.column("school_id", sa.String()), sa.column("name", sa.String()),
                     sa.column("category", sa.String()), sa.column("position", sa.Integer()))


def upgrade() -> None:
    # Plain ADD COLUMN on both databases: a batch (copy-and-move) rebuild of these tables would
    # DROP tables that others reference, which SQLite refuses with foreign keys on.
    op.add_column("wallets", sa.Column("homeroom", sa.String(40), nullable=True))
    op.add_column("products", sa.Column("allergens", sa.JSON(), nullable=False,
                                        server_default=sa.text("'[]'")))
    op.add_column("products", sa.Column("position", sa.Integer(), nullable=True))
    op.add_column("admin_users", sa.Column("language", sa.String(8), nullable=True))
    op.create_table(
        "wallet_restrictions",
        sa.Column("restriction_id", _ID, autoincrement=True, nullable=False),
        sa.Column("school_id", sa.String(64), nullable=False),
        sa.Column("wallet_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("since", _TS, nullable=False),
        sa.Column("until", _TS, nullable=True),
        sa.Column("set_by", sa.String(64), nullable=True),
        sa.CheckConstraint("kind IN ('category', 'product', 'allergen')",
                           name="ck_wallet_restrictions_kind"),
        sa.ForeignKeyConstraint(["wallet_id"], ["wallets.wallet_id"]),
        sa.PrimaryKeyConstraint("restriction_id"),
    )
    op.create_index("ix_wallet_restrictions_wallet", "wallet_restrictions",
                    ["wallet_id", "kind", "value"])
    bind = op.get_bind()
    rows = bind.execute(sa.select(_products.c.product_id, _products.c.school_id)
                        .order_by(_products.c.school_id, _products.c.category,
                                  _products.c.name, _products.c.product_id)).all()
    counters: dict[str, int] = defaultdict(int)
    for product_id, school_id in rows:
        counters[school_id] += 1
        bind.execute(_products.update().where(_products.c.product_id == product_id)
                     .values(position=counters[school_id]))


def downgrade() -> None:
    op.drop_index("ix_wallet_restrictions_wallet", table_name="wallet_restrictions")
    op.drop_table("wallet_restrictions")
    for table, column in (("admin_users", "language"), ("products", "position"),
                          ("products", "allergens"), ("wallets", "homeroom")):
        _drop_column(table, column)


def _drop_column(table: str, column: str) -> None:
    """SQLite (3.35+) drops an unindexed column in place; Alembic's batch mode would rebuild
    the table, which foreign keys from other tables forbid."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
    else:
        op.drop_column(table, column)
