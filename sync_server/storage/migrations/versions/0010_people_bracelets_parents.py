"""Staff, roster, bracelet inventory, outbound webhooks and parent emails (issue 16)

- ``admin_users``: ``deactivated_at`` and ``password_changed_at``; the role
  ``school_manager`` joins (the column is free text, checked by the code).
- ``password_resets``: one-time reset links, only the SHA-256 of the token stored.
- ``wallets``: the roster's ``student_status`` (active|inactive), parent contact, the student's
  language (for parent emails) and ``left_at``.
- ``roster_imports``: every import's row report, kept for the school's audit.
- ``bracelets``: the inventory of physical bracelets, ``in_stock`` until assigned. The
  ``credentials`` table stays what terminals mirror; existing credentials are recorded here as
  ``assigned`` or ``blocked``, with a history row where a bracelet had none.
- ``ux_credentials_active_uid``: an active UID belongs to one wallet across *all* schools. The
  upgrade refuses, naming the UIDs, if a database already has one active in two schools: which
  of the two students keeps paying with it is a person's decision, not a migration's.
- ``webhook_endpoints``, ``webhook_events`` (the outbox, written in the transaction of the change
  it tells), ``webhook_deliveries`` (one per event and endpoint, the delivery job's queue) and
  ``webhook_attempts`` (each try, for the deliveries page).
- ``outbound_emails``: the mail queue; ``dedupe_key`` makes "at most once a day per wallet" a
  property of the database.
- ``schools.low_balance_threshold``: null is off.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def _refuse_shared_active_uids() -> None:
    rows = op.get_bind().execute(sa.text(
        "SELECT uid, COUNT(*) FROM credentials WHERE status = 'active' "
        "GROUP BY uid HAVING COUNT(*) > 1")).all()
    if rows:
        uids = ", ".join(f"...{r[0][-4:]} ({r[1]} schools)" for r in rows[:20])
        raise RuntimeError(
            "upgrade 0010 stopped: these bracelet UIDs are active in more than one school, and "
            f"an active UID must belong to one wallet: {uids}. Block the wrong one in each "
            "school's console (or `pos-server` against the old release), then upgrade again.")


def upgrade() -> None:
    _refuse_shared_active_uids()

    with op.batch_alter_table("admin_users") as batch:
        batch.add_column(sa.Column("deactivated_at", _TS, nullable=True))
        batch.add_column(sa.Column("password_changed_at", _TS, nullable=True))

    op.create_table(
        "password_resets",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("admin_users.user_id"),
                  nullable=False),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("used_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_password_resets_user", "password_resets", ["user_id"])

    with op.batch_alter_table("wallets") as batch:
        batch.add_column(sa.Column("student_status", sa.String(10), nullable=False,
                                   server_default="active"))
        batch.add_column(sa.Column("parent_email", sa.String(320), nullable=True))
        batch.add_column(sa.Column("parent_phone", sa.String(40), nullable=True))
        batch.add_column(sa.Column("language", sa.String(8), nullable=True))
        batch.add_column(sa.Column("left_at", _TS, nullable=True))

    op.create_table(
        "roster_imports",
        sa.Column("import_id", sa.String(64), nullable=False),
        sa.Column("school_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=True),
        sa.Column("actor_email", sa.String(320), nullable=True),
        sa.Column("filename", sa.String(200), nullable=True),
        sa.Column("rows_total", sa.Integer, nullable=False),
        sa.Column("rows_ok", sa.Integer, nullable=False),
        sa.Column("rows_failed", sa.Integer, nullable=False),
        sa.Column("applied", sa.Boolean, nullable=False),
        sa.Column("report", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("import_id"),
    )
    op.create_index("ix_roster_imports_school_at", "roster_imports", ["school_id", "at"])

    op.create_table(
        "bracelets",
        sa.Column("school_id", sa.String(64), nullable=False),
        sa.Column("uid", sa.String(20), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("wallet_id", sa.String(64), nullable=True),
        sa.Column("batch_id", sa.String(64), nullable=True),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("delivered_at", _TS, nullable=True),
        sa.Column("delivered_by", sa.String(64), nullable=True),
        sa.CheckConstraint(
            "state IN ('in_stock', 'assigned', 'delivered', 'blocked', 'retired')",
            name="ck_bracelets_state"),
        sa.PrimaryKeyConstraint("school_id", "uid"),
    )
    op.create_index("ix_bracelets_school_state", "bracelets", ["school_id", "state", "uid"])
    op.create_index("ix_bracelets_wallet", "bracelets", ["wallet_id"])
    op.execute(
        "INSERT INTO bracelets (school_id, uid, state, wallet_id, batch_id, received_at, "
        "updated_at) SELECT school_id, uid, CASE WHEN status = 'active' THEN 'assigned' "
        "ELSE 'blocked' END, wallet_id, NULL, assigned_at, COALESCE(blocked_at, assigned_at) "
        "FROM credentials")
    op.execute(
        "INSERT INTO credential_events (school_id, uid, wallet_id, action, other_uid, at, "
        "actor_id, note) SELECT c.school_id, c.uid, c.wallet_id, 'assigned', NULL, "
        "c.assigned_at, NULL, 'recorded by upgrade 0010' FROM credentials c "
        "WHERE NOT EXISTS (SELECT 1 FROM credential_events e "
        "WHERE e.school_id = c.school_id AND e.uid = c.uid)")
    op.create_index("ux_credentials_active_uid", "credentials", ["uid"], unique=True,
                    sqlite_where=sa.text("status = 'active'"),
                    postgresql_where=sa.text("status = 'active'"))

    op.create_table(
        "webhook_endpoints",
        sa.Column("endpoint_id", sa.String(64), nullable=False),
        sa.Column("school_id", sa.String(64), sa.ForeignKey("schools.school_id"),
                  nullable=False),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("secret", sa.String(100), nullable=False),
        sa.Column("event_types", sa.JSON, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("description", sa.String(200), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("endpoint_id"),
    )
    op.create_index("ix_webhook_endpoints_school", "webhook_endpoints", ["school_id"])

    op.create_table(
        "webhook_events",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("school_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(40), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_webhook_events_school_created", "webhook_events",
                    ["school_id", "created_at"])
    op.create_index("ux_webhook_events_dedupe", "webhook_events", ["dedupe_key"], unique=True,
                    sqlite_where=sa.text("dedupe_key IS NOT NULL"),
                    postgresql_where=sa.text("dedupe_key IS NOT NULL"))

    op.create_table(
        "webhook_deliveries",
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("endpoint_id", sa.String(64), nullable=False),
        sa.Column("school_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", _TS, nullable=True),
        sa.Column("lease_until", _TS, nullable=True),
        sa.Column("last_status", sa.Integer, nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("last_attempt_at", _TS, nullable=True),
        sa.Column("delivered_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("state IN ('pending', 'delivered', 'failed')",
                           name="ck_webhook_deliveries_state"),
        sa.PrimaryKeyConstraint("delivery_id"),
    )
    op.create_index("ux_webhook_deliveries_event_endpoint", "webhook_deliveries",
                    ["event_id", "endpoint_id"], unique=True)
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries",
                    ["state", "next_attempt_at"])
    op.create_index("ix_webhook_deliveries_school_created", "webhook_deliveries",
                    ["school_id", "created_at"])

    op.create_table(
        "webhook_attempts",
        sa.Column("attempt_id", _ID, autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("school_id", sa.String(64), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("error", sa.String(300), nullable=True),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("attempt_id"),
    )
    op.create_index("ix_webhook_attempts_delivery", "webhook_attempts", ["delivery_id"])

    op.create_table(
        "outbound_emails",
        sa.Column("email_id", sa.String(64), nullable=False),
        sa.Column("school_id", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=True),
        sa.Column("to_address", sa.String(320), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("body_text", sa.Text, nullable=False),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", _TS, nullable=True),
        sa.Column("lease_until", _TS, nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("sent_at", _TS, nullable=True),
        sa.CheckConstraint("state IN ('pending', 'sent', 'failed')",
                           name="ck_outbound_emails_state"),
        sa.PrimaryKeyConstraint("email_id"),
    )
    op.create_index("ix_outbound_emails_due", "outbound_emails", ["state", "next_attempt_at"])
    op.create_index("ix_outbound_emails_school_created", "outbound_emails",
                    ["school_id", "created_at"])
    op.create_index("ux_outbound_emails_dedupe", "outbound_emails", ["dedupe_key"], unique=True,
                    sqlite_where=sa.text("dedupe_key IS NOT NULL"),
                    postgresql_where=sa.text("dedupe_key IS NOT NULL"))

    with op.batch_alter_table("schools") as batch:
        batch.add_column(sa.Column("low_balance_threshold", sa.BigInteger, nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite >= 3.35): batch mode would re-create these tables, which other
    # tables' foreign keys name.
    op.drop_column("schools", "low_balance_threshold")
    for table in ("outbound_emails", "webhook_attempts", "webhook_deliveries", "webhook_events",
                  "webhook_endpoints"):
        op.drop_table(table)
    op.drop_index("ux_credentials_active_uid", table_name="credentials")
    op.drop_table("bracelets")
    op.drop_table("roster_imports")
    for column in ("left_at", "language", "parent_phone", "parent_email", "student_status"):
        op.drop_column("wallets", column)
    op.drop_table("password_resets")
    op.drop_column("admin_users", "password_changed_at")
    op.drop_column("admin_users", "deactivated_at")
