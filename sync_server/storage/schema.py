"""Every table of the server, as SQLAlchemy Core metadata.

Each row carries ``school_id`` (tenant isolation, and so tables can later be distributed by it).
Rows that terminals mirror carry ``version``: the school's change counter at their last change,
which is what snapshot cursors compare (see :mod:`sync_server.snapshot`).
The Alembic migrations are the source of truth for the database; ``tests/server/test_schema``
checks that these definitions and the migrated database agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

metadata: sa.MetaData = sa.MetaData()  # annotated: schema_people and schema_rollups import it back

Money = sa.BigInteger


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Aware datetimes in and out on both databases.

    PostgreSQL keeps ``timestamptz``; SQLite has no time zones, and SQLAlchemy would silently
    drop the offset. Storing naive UTC there and re-attaching UTC on read keeps one behaviour.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a timestamp column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Timestamp = UtcDateTime


def review_columns() -> list[sa.Column[Any]]:
    """Who marked a row reviewed, when and why: every table the exceptions queue lists."""
    return [sa.Column("reviewed_at", Timestamp, nullable=True),
            sa.Column("reviewed_by", sa.String(64), nullable=True),
            sa.Column("review_note", sa.String(1000), nullable=True)]

schools = sa.Table(
    "schools", metadata,
    sa.Column("school_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("offline_max_sale", Money, nullable=False),
    sa.Column("offline_max_unsynced_total", Money, nullable=False),
    sa.Column("offline_max_hours", sa.Integer, nullable=False),
    sa.Column("overdraft_limit", Money, nullable=False),
    # The school's change counter: bumped once per committing transaction that changes rows
    # terminals mirror, while holding this row's lock, so versions commit in order.
    sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("settings_version", sa.BigInteger, nullable=False, server_default="0"),
    # A cursor from another epoch (database restored, school re-created) means "send everything".
    sa.Column("snapshot_epoch", sa.String(32), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    # A parent is told (email, wallet.low_balance webhook) when a balance falls below; null:
    # off (0010).
    sa.Column("low_balance_threshold", Money, nullable=True),
)

# Every ledger account; a wallet's account_id is its wallet_id.
accounts = sa.Table(
    "accounts", metadata,
    sa.Column("account_id", sa.String(64), primary_key=True),
    sa.Column("school_id", sa.String(64), sa.ForeignKey("schools.school_id"), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),  # wallet|revenue|topup_clearing|adjustments
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index("ix_accounts_school_kind", "school_id", "kind"),
)

wallets = sa.Table(
    "wallets", metadata,
    sa.Column("wallet_id", sa.String(64), sa.ForeignKey("accounts.account_id"), primary_key=True),
    sa.Column("school_id", sa.String(64), sa.ForeignKey("schools.school_id"), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("student_number", sa.String(64), nullable=True),  # the school's own key (roster)
    sa.Column("grade", sa.String(40), nullable=True),
    sa.Column("homeroom", sa.String(40), nullable=True),  # class/section (0007)
    # Cached sum of the wallet account's postings; changed only by `balance = balance + :d`
    # in the same transaction as the postings.
    sa.Column("balance", Money, nullable=False, server_default="0"),
    sa.Column("daily_limit", Money, nullable=True),
    sa.Column("status", sa.String(10), nullable=False),  # active|frozen|closed
    sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    # The roster (0010): a student who left is inactive; the parent contact and the student's
    # language are for parent emails (masked in logs).
    sa.Column("student_status", sa.String(10), nullable=False, server_default="active"),
    sa.Column("parent_email", sa.String(320), nullable=True),
    sa.Column("parent_phone", sa.String(40), nullable=True),
    sa.Column("language", sa.String(8), nullable=True),
    sa.Column("left_at", Timestamp, nullable=True),
    sa.Index("ix_wallets_school_version", "school_id", "version", "wallet_id"),
    sa.Index("ux_wallets_school_student", "school_id", "student_number", unique=True),
)

credentials = sa.Table(
    "credentials", metadata,
    sa.Column("school_id", sa.String(64), sa.ForeignKey("schools.school_id"), primary_key=True),
    sa.Column("uid", sa.String(20), primary_key=True),
    sa.Column("wallet_id", sa.String(64), sa.ForeignKey("wallets.wallet_id"), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),  # active|blocked
    sa.Column("assigned_at", Timestamp, nullable=False),
    sa.Column("blocked_at", Timestamp, nullable=True),
    sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
    sa.Index("ix_credentials_school_version", "school_id", "version", "uid"),
    sa.Index("ix_credentials_wallet", "wallet_id"),
)
# An active UID belongs to one wallet across all schools, not only within one (0010).
ACTIVE_CREDENTIAL = credentials.c.status == "active"
sa.Index("ux_credentials_active_uid", credentials.c.uid, unique=True,
         sqlite_where=ACTIVE_CREDENTIAL, postgresql_where=ACTIVE_CREDENTIAL)

products = sa.Table(
    "products", metadata,
    sa.Column("product_id", sa.String(64), primary_key=True),
    sa.Column("school_id", sa.String(64), sa.ForeignKey("schools.school_id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("price", Money, nullable=False),
    sa.Column("category", sa.String(100), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", Timestamp, nullable=False),
    # Lower-case allergen names, a JSON list (0007).
    sa.Column("allergens", sa.JSON, nullable=False, server_default=sa.text("'[]'")),
    # The till's button order and hotkeys, set by admins; a new product goes last (0007).
    sa.Column("position", sa.Integer, nullable=True),
    sa.Index("ix_products_school_version", "school_id", "version", "product_id"),
)

# Price history, so `price_mismatch` compares with the catalog price at the sale's time.
product_prices = sa.Table(
    "product_prices", metadata,
    sa.Column("product_id", sa.String(64), sa.ForeignKey("products.product_id"), primary_key=True),
    sa.Column("valid_from", Timestamp, primary_key=True),
    sa.Column("school_id", sa.String(64), nullable=False),
    sa.Column("price", Money, nullable=False),
)

cashiers = sa.Table(
    "cashiers", metadata,
    sa.Column("cashier_id", sa.String(64), primary_key=True),
    sa.Column("school_id", sa.String(64), sa.ForeignKey("schools.school_id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("pin_hash", sa.String(200), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index("ix_cashiers_school_version", "school_id", "version", "cashier_id"),
)

devices = sa.Table(
    "devices", metadata,
    sa.Column("device_id", sa.String(64), primary_key=True),
    sa.Column("school_id", sa.String(64), sa.ForeignKey("schools.school_id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("status", sa.String(10), nullable=False),  # active|revoked
    sa.Column("enrolled_at", Timestamp, nullable=False),
    sa.Column("revoked_at", Timestamp, nullable=True),
    sa.Column("last_seen_at", Timestamp, nullable=True),
    sa.Column("last_push_at", Timestamp, nullable=True),
    sa.Column("app_version", sa.String(100), nullable=True),
    # Highest n with every seq <= n processed, and the highest seq ever received.
    sa.Column("acked_seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("max_seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.Index("ix_devices_school", "school_id"),
)

enrollment_codes = sa.Table(
    "enrollment_codes", metadata,
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column("school_id", sa.String(64), sa.ForeignKey("schools.school_id"), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=True),
    sa.Column("used_at", Timestamp, nullable=True),
    sa.Column("device_id", sa.String(64), nullable=True),
)

# Which seqs of a device have a stored outcome; the source of acked_seq and missing_seqs.
# Append-only hot tables (this one, postings, sales) carry no foreign keys: the apply path
# validates against locked rows, per-row FK triggers halved PostgreSQL's throughput, and
# ``audit-ledger`` checks the references.
device_seqs = sa.Table(
    "device_seqs", metadata,
    sa.Column("device_id", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("school_id", sa.String(64), nullable=False),
    sa.Column("ref", sa.String(64), nullable=False),
)

# The journal. Each posting moves a positive amount from one account to another of the same
# school (the spec's words), so every posting balances by construction: per school, the sum
# over accounts of (received - sent) is zero. A wallet's balance is what it received minus
# what it sent. Corrections are new postings in the other direction, never edits.
postings = sa.Table(
    "postings", metadata,
    sa.Column("posting_id", sa.String(64), primary_key=True),
    sa.Column("school_id", sa.String(64), nullable=False),
    # sale|void|topup|refund|adjustment|reversal
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("from_account", sa.String(64), nullable=False),
    sa.Column("to_account", sa.String(64), nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("sale_ref", sa.String(64), nullable=True),
    sa.Column("occurred_at", Timestamp, nullable=False),  # business time (terminal's created_at)
    sa.Column("posted_at", Timestamp, nullable=False),
    sa.Column("memo", sa.String(500), nullable=True),
    sa.Column("actor", sa.String(64), nullable=True),  # admin user or device
    sa.CheckConstraint("amount > 0", name="ck_postings_amount_positive"),
    sa.CheckConstraint("from_account <> to_account", name="ck_postings_two_accounts"),
    sa.Index("ix_postings_from", "from_account"),
    sa.Index("ix_postings_to", "to_account"),
    # The journal up to or since a date: balances at a date (0009).
    sa.Index("ix_postings_school_posted", "school_id", "posted_at"),
)

# Every sale or void received from a device, first outcome per ref (applied or rejected).
sales = sa.Table(
    "sales", metadata,
    sa.Column("school_id", sa.String(64), primary_key=True),
    sa.Column("ref", sa.String(64), primary_key=True),
    sa.Column("device_id", sa.String(64), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("voids_ref", sa.String(64), nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("received_at", Timestamp, nullable=False),
    sa.Column("cashier_id", sa.String(64), nullable=False),
    sa.Column("wallet_id", sa.String(64), nullable=False),
    sa.Column("credential_uid", sa.String(20), nullable=True),
    sa.Column("lines", sa.JSON, nullable=False),
    sa.Column("total", Money, nullable=False),
    sa.Column("offline", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),  # applied|rejected
    sa.Column("code", sa.String(40), nullable=True),
    sa.Column("detail", sa.String(500), nullable=True),
    sa.Column("flags", sa.JSON, nullable=False),
    sa.Column("balance_after", Money, nullable=True),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("txn_id", sa.String(64), nullable=True),  # its posting's ID
    sa.Column("business_day", sa.String(10), nullable=False),  # school-local YYYY-MM-DD
    # Rejected or flagged: an exception an admin must look at (until reviewed_at is set).
    sa.Column("needs_review", sa.Boolean, nullable=False, server_default=sa.false()),
    *review_columns(),
    sa.Index("ix_sales_school_received", "school_id", "received_at"),
    # Sales of a wallet, and its spend on one school day (daily limits are summed from it).
    sa.Index("ix_sales_wallet_day", "school_id", "wallet_id", "business_day"),
    # A school day or a range of them: dashboard, Z report, breakdowns, date filters (0009).
    sa.Index("ix_sales_school_day", "school_id", "business_day"),
    # The sales list over a range of days, sorted newest received first from the index (0012).
    sa.Index("ix_sales_day_received", "school_id", "business_day", "received_at", "ref"),
)
# The open exceptions queue: only sales still waiting for review are in this index, so the
# queue and its count cost what is open, not the school's whole history (0004).
OPEN_REVIEW = sa.and_(sales.c.needs_review, sales.c.reviewed_at.is_(None))
sa.Index("ix_sales_open_review", sales.c.school_id, sales.c.received_at,
         sqlite_where=OPEN_REVIEW, postgresql_where=OPEN_REVIEW)
# Every flagged or rejected sale, reviewed or not: the sales list's flag filter (0012).
sa.Index("ix_sales_flagged", sales.c.school_id, sales.c.received_at,
         sqlite_where=sales.c.needs_review, postgresql_where=sales.c.needs_review)

# A ref re-sent with different content: never applied, kept for review.
sale_conflicts = sa.Table(
    "sale_conflicts", metadata,
    sa.Column("conflict_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
              primary_key=True, autoincrement=True),
    sa.Column("school_id", sa.String(64), nullable=False),
    sa.Column("ref", sa.String(64), nullable=False),
    sa.Column("device_id", sa.String(64), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("received_at", Timestamp, nullable=False),
    *review_columns(),
    sa.Index("ux_sale_conflicts_ref_hash", "school_id", "ref", "content_hash", unique=True),
)

admin_users = sa.Table(
    "admin_users", metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    # platform_admin|school_admin|school_manager|school_viewer
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("school_id", sa.String(64), sa.ForeignKey("schools.school_id"), nullable=True),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("language", sa.String(8), nullable=True),  # console language; null: guess (0007)
    sa.Column("deactivated_at", Timestamp, nullable=True),  # (0010)
    sa.Column("password_changed_at", Timestamp, nullable=True),  # (0010)
)

# ------------------------------------------------------------------ admin console (0002)

# Server-side admin sessions: the cookie holds a random token, the database only its SHA-256,
# so a stolen database cannot be replayed as cookies and logout really ends a session.
admin_sessions = sa.Table(
    "admin_sessions", metadata,
    sa.Column("session_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(64), sa.ForeignKey("admin_users.user_id"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    # The school a platform admin is looking at; school roles always use their own.
    sa.Column("school_id", sa.String(64), nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("last_seen_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
    sa.Index("ix_admin_sessions_user", "user_id"),
)

# Every admin action (and login attempt): who, when, what, before/after. Append-only.
audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("audit_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
              primary_key=True, autoincrement=True),
    sa.Column("school_id", sa.String(64), nullable=True),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("actor_id", sa.String(64), nullable=True),
    sa.Column("actor_email", sa.String(320), nullable=True),
    sa.Column("action", sa.String(60), nullable=False),
    sa.Column("target_type", sa.String(40), nullable=True),
    sa.Column("target_id", sa.String(64), nullable=True),
    sa.Column("before", sa.JSON, nullable=True),
    sa.Column("after", sa.JSON, nullable=True),
    sa.Column("note", sa.String(1000), nullable=True),
    sa.Column("client", sa.String(64), nullable=True),
    sa.Index("ix_audit_log_school_at", "school_id", "at"),
    sa.Index("ix_audit_log_target", "target_type", "target_id"),
)

# First outcome of every payment gateway event, keyed by the gateway's event_id.
payment_events = sa.Table(
    "payment_events", metadata,
    sa.Column("event_id", sa.String(200), primary_key=True),
    sa.Column("school_id", sa.String(64), nullable=True),  # null: the wallet was unknown
    sa.Column("event_type", sa.String(100), nullable=False),
    sa.Column("wallet_id", sa.String(64), nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("reference", sa.String(200), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("received_at", Timestamp, nullable=False),
    # credited|debited|recorded|held (v1.1), rejected (v1 rows only)
    sa.Column("status", sa.String(12), nullable=False),
    # For held and recorded events: why (a hold reason or a lifecycle note).
    sa.Column("code", sa.String(40), nullable=True),
    sa.Column("flags", sa.JSON, nullable=False),
    sa.Column("balance_after", Money, nullable=True),
    sa.Column("txn_id", sa.String(64), nullable=True),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    # The payment (by reference) this event belongs to (0005); null only on v1 rows it could
    # not be tied to.
    sa.Column("payment_id", sa.String(64), nullable=True),
    # webhook|reconciliation: how the event reached the ledger.
    sa.Column("source", sa.String(20), nullable=False, server_default="webhook"),
    # A held event an admin settled: credited (to a wallet) or refund_requested.
    sa.Column("resolution", sa.String(20), nullable=True),
    *review_columns(),
    sa.Index("ix_payment_events_school_received", "school_id", "received_at"),
    sa.Index("ix_payment_events_payment", "payment_id", "received_at"),
)

# One row per gateway payment (its ``reference``), moved through the v1.1 lifecycle by its
# events: pending -> completed | failed, then refunded or charged_back; held while a person
# must decide, refund_requested once they asked the gateway to give the money back.
# ``credited`` and ``debited`` are what the ledger moved for it; the CHECKs make "refunded at
# most its credited amount" a property of the database, not only of the code.
payments = sa.Table(
    "payments", metadata,
    sa.Column("payment_id", sa.String(64), primary_key=True),
    sa.Column("school_id", sa.String(64), nullable=True),  # null: the wallet is unknown
    sa.Column("reference", sa.String(200), nullable=False),  # '' when the gateway sent none
    sa.Column("wallet_id", sa.String(64), nullable=False),  # as the first event named it
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount", Money, nullable=False),  # as the first event stated it
    # pending|completed|failed|refunded|charged_back|held|refund_requested
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("credited", Money, nullable=False, server_default="0"),
    sa.Column("debited", Money, nullable=False, server_default="0"),
    sa.Column("credit_txn_id", sa.String(64), nullable=True),
    sa.Column("hold_reason", sa.String(40), nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    # Reconciliation of payments left pending (sync_server.reconciliation): when to ask the
    # gateway next, how often it was asked, and which process holds the check until when.
    sa.Column("next_check_at", Timestamp, nullable=True),
    sa.Column("check_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lease_until", Timestamp, nullable=True),
    sa.Column("last_check_error", sa.String(200), nullable=True),
    sa.CheckConstraint("credited >= 0 AND debited >= 0 AND debited <= credited",
                       name="ck_payments_refund_within_credit"),
    sa.Index("ix_payments_school_updated", "school_id", "updated_at"),
    sa.Index("ix_payments_due", "state", "next_check_at"),
)
sa.Index("ux_payments_reference", payments.c.reference, unique=True,
         sqlite_where=payments.c.reference != "", postgresql_where=payments.c.reference != "")

# Money an admin (or the server's own tooling) moved: manual top-ups and adjustments,
# reversals of sales, held payments credited by hand, opening balances. Each is one business
# event with one posting, idempotent by ``idem_key`` (the form's key: a second click replays).
money_ops = sa.Table(
    "money_ops", metadata,
    sa.Column("op_id", sa.String(64), primary_key=True),
    sa.Column("school_id", sa.String(64), nullable=False),
    sa.Column("idem_key", sa.String(100), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    # topup|adjustment|reversal|payment_credit|opening|refund|transfer (refund, transfer: 16)
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("wallet_id", sa.String(64), nullable=False),
    sa.Column("amount", Money, nullable=False),  # signed, as seen from the wallet
    sa.Column("posting_id", sa.String(64), nullable=False),
    sa.Column("balance_after", Money, nullable=True),  # null only on rows migrated by 0005
    sa.Column("sale_ref", sa.String(64), nullable=True),  # reversal: the reversed sale
    sa.Column("payment_event_id", sa.String(200), nullable=True),  # payment_credit: the event
    sa.Column("reason", sa.String(500), nullable=True),
    sa.Column("actor", sa.String(64), nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.CheckConstraint("amount <> 0", name="ck_money_ops_amount_nonzero"),
    sa.Index("ux_money_ops_key", "school_id", "idem_key", unique=True),
    sa.Index("ux_money_ops_posting", "posting_id", unique=True),
    sa.Index("ix_money_ops_wallet", "school_id", "wallet_id"),
    # A period's reversals and console top-ups (Z report, breakdown, money flows; 0009).
    sa.Index("ix_money_ops_school_created", "school_id", "created_at"),
)
# A held payment event is settled at most once (0005).
sa.Index("ux_money_ops_payment_event", money_ops.c.payment_event_id, unique=True,
         sqlite_where=money_ops.c.payment_event_id.is_not(None),
         postgresql_where=money_ops.c.payment_event_id.is_not(None))

# What refunded a sale: a terminal void or an admin reversal. The primary key is the rule
# "a sale is refunded at most once, whichever path tries second": the second INSERT fails.
sale_refunds = sa.Table(
    "sale_refunds", metadata,
    sa.Column("school_id", sa.String(64), primary_key=True),
    sa.Column("sale_ref", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(10), nullable=False),  # void|reversal
    sa.Column("void_ref", sa.String(64), nullable=True),  # kind void: the void's ref
    sa.Column("op_id", sa.String(64), nullable=True),  # kind reversal: its money_ops row
    sa.Column("amount", Money, nullable=False),
    sa.Column("refunded_at", Timestamp, nullable=False),
    sa.CheckConstraint(
        "(kind = 'void' AND void_ref IS NOT NULL AND op_id IS NULL) OR "
        "(kind = 'reversal' AND op_id IS NOT NULL AND void_ref IS NULL)",
        name="ck_sale_refunds_one_link"),
    sa.CheckConstraint("amount >= 0", name="ck_sale_refunds_amount"),
)

# A reused event_id with a different body: never applied, kept for review.
payment_conflicts = sa.Table(
    "payment_conflicts", metadata,
    sa.Column("conflict_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
              primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(200), nullable=False),
    sa.Column("school_id", sa.String(64), nullable=True),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("received_at", Timestamp, nullable=False),
    *review_columns(),
    sa.Index("ux_payment_conflicts_event_hash", "event_id", "content_hash", unique=True),
)

# What happened to each bracelet over time (assigned, blocked, replaced).
credential_events = sa.Table(
    "credential_events", metadata,
    sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
              primary_key=True, autoincrement=True),
    sa.Column("school_id", sa.String(64), nullable=False),
    sa.Column("uid", sa.String(20), nullable=False),
    sa.Column("wallet_id", sa.String(64), nullable=True),
    sa.Column("action", sa.String(20), nullable=False),  # assigned|blocked|replaced_by|replaces
    sa.Column("other_uid", sa.String(20), nullable=True),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("actor_id", sa.String(64), nullable=True),
    sa.Column("note", sa.String(500), nullable=True),
    sa.Index("ix_credential_events_school_uid", "school_id", "uid"),
)

# A reviewed gap in a device's seqs (the gap itself is derived from device_seqs).
seq_gap_reviews = sa.Table(
    "seq_gap_reviews", metadata,
    sa.Column("device_id", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("school_id", sa.String(64), nullable=False),
    sa.Column("reviewed_at", Timestamp, nullable=False),
    sa.Column("reviewed_by", sa.String(64), nullable=False),
    sa.Column("review_note", sa.String(1000), nullable=False),
)

# ------------------------------------------------------------ login lockout, signing key (0006)

# Every admin sign-in attempt that reached a password check, kept 30 days (successes 90): the
# lockout counts failures per (account, address), per address and overall from here, so every
# worker process and host shares one count. ``account`` is the user's ID, or for an email that
# names no account a keyed hash of it (the typed text itself is never stored); ``address`` is
# the client address, an IPv6 address cut to its /64.
login_attempts = sa.Table(
    "login_attempts", metadata,
    sa.Column("attempt_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
              primary_key=True, autoincrement=True),
    sa.Column("account", sa.String(64), nullable=False),
    sa.Column("address", sa.String(64), nullable=False),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("succeeded", sa.Boolean, nullable=False),
    sa.Index("ix_login_attempts_account_at", "account", "at"),
    sa.Index("ix_login_attempts_address_at", "address", "at"),
    sa.Index("ix_login_attempts_at", "at"),
)

# Keys the server makes for itself when none is configured (``signing_key``: see
# sync_server/signing.py), so every worker and host uses the same one.
server_secrets = sa.Table(
    "server_secrets", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

# ------------------------------------------------------- restrictions, positions, language (0007)

# What a wallet may not buy (spec v1.1): one row per blocked category, product (by product_id)
# or allergen, from ``since`` until it was lifted (``until``), so ``restricted_item`` flags a
# sale only for what was blocked before the sale was made.
wallet_restrictions = sa.Table(
    "wallet_restrictions", metadata,
    sa.Column("restriction_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
              primary_key=True, autoincrement=True),
    sa.Column("school_id", sa.String(64), nullable=False),
    sa.Column("wallet_id", sa.String(64), sa.ForeignKey("wallets.wallet_id"), nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),  # category|product|allergen
    sa.Column("value", sa.String(200), nullable=False),
    sa.Column("since", Timestamp, nullable=False),
    sa.Column("until", Timestamp, nullable=True),
    sa.Column("set_by", sa.String(64), nullable=True),
    sa.CheckConstraint("kind IN ('category', 'product', 'allergen')",
                       name="ck_wallet_restrictions_kind"),
    sa.Index("ix_wallet_restrictions_wallet", "wallet_id", "kind", "value"),
)

# ------------------------------------------------------------ shared enrollment limit (0008)

# Failed device enrollments, one row each, so every worker process and host counts the same
# failures per client address (the limiter lived in each process's memory before).
enroll_failures = sa.Table(
    "enroll_failures", metadata,
    sa.Column("failure_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
              primary_key=True, autoincrement=True),
    sa.Column("address", sa.String(64), nullable=False),
    sa.Column("at", Timestamp, nullable=False),
    sa.Index("ix_enroll_failures_address_at", "address", "at"),
    sa.Index("ix_enroll_failures_at", "at"),
)


# Issue 16's tables (0010) live in their own module; imported here so that this module's
# ``metadata`` is the whole database wherever it is used.
from .schema_people import *  # noqa: E402, F403

# Issue 15's report rollups (0011), likewise.
from .schema_rollups import *  # noqa: E402, F403
