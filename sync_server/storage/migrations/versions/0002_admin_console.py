"""admin console: sessions, audit log, payment events, bracelet history, gap reviews

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "admin_sessions",
        sa.Column("session_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("school_id", sa.String(64), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_seen_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["admin_users.user_id"]),
        sa.PrimaryKeyConstraint("session_hash"),
    )
    op.create_index("ix_admin_sessions_user", "admin_sessions", ["user_id"])

    op.create_table(
        "audit_log",
        sa.Column("audit_id", _ID, autoincrement=True, nullable=False),
        sa.Column("school_id", sa.String(64), nullable=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=True),
        sa.Column("actor_email", sa.String(320), nullable=True),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("target_type", sa.String(40), nullable=True),
        sa.Column("target_id", sa.String(64), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("note", sa.String(1000), nullable=True),
        sa.Column("client", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("audit_id"),
    )
    op.create_index("ix_audit_log_school_at", "audit_log", ["school_id", "at"])
    op.create_index("ix_audit_log_target", "audit_log", ["target_type", "target_id"])

    op.create_table(
        "payment_events",
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("school_id", sa.String(64), nullable=True),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("wallet_id", sa.String(64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("code", sa.String(40), nullable=True),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=True),
        sa.Column("txn_id", sa.String(64), nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("reviewed_at", _TS, nullable=True),
        sa.Column("reviewed_by", sa.String(64), nullable=True),
        sa.Column("review_note", sa.String(1000), nullable=True),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_payment_events_school_received", "payment_events",
                    ["school_id", "received_at"])

    op.create_table(
        "payment_conflicts",
        sa.Column("conflict_id", _ID, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("school_id", sa.String(64), nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("reviewed_at", _TS, nullable=True),
        sa.Column("reviewed_by", sa.String(64), nullable=True),
        sa.Column("review_note", sa.String(1000), nullable=True),
        sa.PrimaryKeyConstraint("conflict_id"),
    )
    op.create_index("ux_payment_conflicts_event_hash", "payment_conflicts",
                    ["event_id", "content_hash"], unique=True)

    op.create_table(
        "credential_events",
        sa.Column("event_id", _ID, autoincrement=True, nullable=False),
        sa.Column("school_id", sa.String(64), nullable=False),
        sa.Column("uid", sa.String(20), nullable=False),
        sa.Column("wallet_id", sa.String(64), nullable=True),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("other_uid", sa.String(20), nullable=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=True),
        sa.Column("note", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_credential_events_school_uid", "credential_events", ["school_id", "uid"])

    op.create_table(
        "seq_gap_reviews",
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("school_id", sa.String(64), nullable=False),
        sa.Column("reviewed_at", _TS, nullable=False),
        sa.Column("reviewed_by", sa.String(64), nullable=False),
        sa.Column("review_note", sa.String(1000), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "seq"),
    )


def downgrade() -> None:
    op.drop_table("seq_gap_reviews")
    op.drop_index("ix_credential_events_school_uid", table_name="credential_events")
    op.drop_table("credential_events")
    op.drop_index("ux_payment_conflicts_event_hash", table_name="payment_conflicts")
    op.drop_table("payment_conflicts")
    op.drop_index("ix_payment_events_school_received", table_name="payment_events")
    op.drop_table("payment_events")
    op.drop_index("ix_audit_log_target", table_name="audit_log")
    op.drop_index("ix_audit_log_school_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_admin_sessions_user", table_name="admin_sessions")
    op.drop_table("admin_sessions")
