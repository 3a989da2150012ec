"""Tables for staff, the roster, the bracelet inventory and what reaches parents (0010).

Kept apart from :mod:`sync_server.storage.schema` (which imports this module at its end, so
its ``metadata`` holds these tables too) because none of them is on the sale path: they are
written by the console, the roster import and the two delivery jobs (webhooks, email).
"""

from __future__ import annotations

import sqlalchemy as sa

from .schema import Timestamp, metadata

__all__ = ["bracelets", "outbound_emails", "password_resets", "roster_imports",
           "webhook_attempts", "webhook_deliveries", "webhook_endpoints", "webhook_events"]

# One-time password reset links: only the SHA-256 of the token is stored, as for sessions.
password_resets = sa.Table(
    "password_resets", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(64), sa.ForeignKey("admin_users.user_id"), nullable=False),
    sa.Column("created_by", sa.String(64), nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
    sa.Column("used_at", Timestamp, nullable=True),
    sa.Index("ix_password_resets_user", "user_id"),
)

# Every roster or bracelet-batch import with its row report ({row, status, message, ...}),
# applied or refused, kept so the school can show later what each import did.
roster_imports = sa.Table(
    "roster_imports", metadata,
    sa.Column("import_id", sa.String(64), primary_key=True),
    sa.Column("school_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),  # students|bracelets
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("actor_id", sa.String(64), nullable=True),
    sa.Column("actor_email", sa.String(320), nullable=True),
    sa.Column("filename", sa.String(200), nullable=True),
    sa.Column("rows_total", sa.Integer, nullable=False),
    sa.Column("rows_ok", sa.Integer, nullable=False),
    sa.Column("rows_failed", sa.Integer, nullable=False),
    sa.Column("applied", sa.Boolean, nullable=False),
    sa.Column("report", sa.JSON, nullable=False),
    sa.Index("ix_roster_imports_school_at", "school_id", "at"),
)

# The physical bracelets a school holds: in_stock -> assigned -> delivered -> blocked ->
# retired. ``credentials`` stays what terminals mirror (an assignment, active or blocked);
# this is the inventory around it, and ``credential_events`` each bracelet's history.
BRACELET_STATES = ("in_stock", "assigned", "delivered", "blocked", "retired")
bracelets = sa.Table(
    "bracelets", metadata,
    sa.Column("school_id", sa.String(64), primary_key=True),
    sa.Column("uid", sa.String(20), primary_key=True),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("wallet_id", sa.String(64), nullable=True),
    sa.Column("batch_id", sa.String(64), nullable=True),  # the roster_imports row it came in
    sa.Column("received_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Column("delivered_at", Timestamp, nullable=True),
    sa.Column("delivered_by", sa.String(64), nullable=True),
    sa.CheckConstraint(
        "state IN ('in_stock', 'assigned', 'delivered', 'blocked', 'retired')",
        name="ck_bracelets_state"),
    sa.Index("ix_bracelets_school_state", "school_id", "state", "uid"),
    sa.Index("ix_bracelets_wallet", "wallet_id"),
)

# ------------------------------------------------------------------ outbound webhooks

# Where a school wants to hear of events. ``secret`` signs each delivery (HMAC-SHA256 over
# "<ts>.<body>", as the inbound webhook); it is kept in clear because signing needs it.
webhook_endpoints = sa.Table(
    "webhook_endpoints", metadata,
    sa.Column("endpoint_id", sa.String(64), primary_key=True),
    sa.Column("school_id", sa.String(64), sa.ForeignKey("schools.school_id"), nullable=False),
    sa.Column("url", sa.String(500), nullable=False),
    sa.Column("secret", sa.String(100), nullable=False),
    sa.Column("event_types", sa.JSON, nullable=False),  # a list of event type names
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("description", sa.String(200), nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=True),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Index("ix_webhook_endpoints_school", "school_id"),
)

# The outbox: an event is written in the same transaction as the change it tells, so a
# committed change always has its event and a rolled-back one never does.
webhook_events = sa.Table(
    "webhook_events", metadata,
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("school_id", sa.String(64), nullable=False),
    sa.Column("event_type", sa.String(40), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("dedupe_key", sa.String(200), nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index("ix_webhook_events_school_created", "school_id", "created_at"),
)
sa.Index("ux_webhook_events_dedupe", webhook_events.c.dedupe_key, unique=True,
         sqlite_where=webhook_events.c.dedupe_key.is_not(None),
         postgresql_where=webhook_events.c.dedupe_key.is_not(None))

# One row per (event, endpoint): the delivery job's queue, leased like pending payments.
webhook_deliveries = sa.Table(
    "webhook_deliveries", metadata,
    sa.Column("delivery_id", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("endpoint_id", sa.String(64), nullable=False),
    sa.Column("school_id", sa.String(64), nullable=False),
    sa.Column("state", sa.String(12), nullable=False),  # pending|delivered|failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", Timestamp, nullable=True),
    sa.Column("lease_until", Timestamp, nullable=True),
    sa.Column("last_status", sa.Integer, nullable=True),
    sa.Column("last_error", sa.String(300), nullable=True),
    sa.Column("last_attempt_at", Timestamp, nullable=True),
    sa.Column("delivered_at", Timestamp, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.CheckConstraint("state IN ('pending', 'delivered', 'failed')",
                       name="ck_webhook_deliveries_state"),
    sa.Index("ux_webhook_deliveries_event_endpoint", "event_id", "endpoint_id", unique=True),
    sa.Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
    sa.Index("ix_webhook_deliveries_school_created", "school_id", "created_at"),
)

webhook_attempts = sa.Table(
    "webhook_attempts", metadata,
    sa.Column("attempt_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
              primary_key=True, autoincrement=True),
    sa.Column("delivery_id", sa.String(64), nullable=False),
    sa.Column("school_id", sa.String(64), nullable=False),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.String(300), nullable=True),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Index("ix_webhook_attempts_delivery", "delivery_id"),
)

# ------------------------------------------------------------------ email

# The mail queue. ``dedupe_key`` (e.g. "low_balance:<wallet>:<school-local day>") makes "at
# most once a day per wallet" hold in the database, across processes and hosts.
outbound_emails = sa.Table(
    "outbound_emails", metadata,
    sa.Column("email_id", sa.String(64), primary_key=True),
    sa.Column("school_id", sa.String(64), nullable=True),  # null: a platform admin's mail
    sa.Column("kind", sa.String(30), nullable=False),  # low_balance|password_reset
    sa.Column("dedupe_key", sa.String(200), nullable=True),
    sa.Column("to_address", sa.String(320), nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("body_text", sa.Text, nullable=False),
    sa.Column("language", sa.String(8), nullable=True),
    sa.Column("state", sa.String(10), nullable=False),  # pending|sent|failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", Timestamp, nullable=True),
    sa.Column("lease_until", Timestamp, nullable=True),
    sa.Column("last_error", sa.String(300), nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("sent_at", Timestamp, nullable=True),
    sa.CheckConstraint("state IN ('pending', 'sent', 'failed')",
                       name="ck_outbound_emails_state"),
    sa.Index("ix_outbound_emails_due", "state", "next_attempt_at"),
    sa.Index("ix_outbound_emails_school_created", "school_id", "created_at"),
)
sa.Index("ux_outbound_emails_dedupe", outbound_emails.c.dedupe_key, unique=True,
         sqlite_where=outbound_emails.c.dedupe_key.is_not(None),
         postgresql_where=outbound_emails.c.dedupe_key.is_not(None))
