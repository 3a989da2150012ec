"""money beyond the sale: payments, money_ops, sale_refunds; sales.voided_by replaced

v1.1 moves every movement of money through one ledger module with one idempotency rule. This
migration adds the tables that make each kind of movement a business event of its own:

- ``payments``: one row per gateway payment reference, with its lifecycle state and what was
  credited and debited for it (CHECK: debited <= credited);
- ``money_ops``: admin top-ups, adjustments, reversals, held payments credited by hand,
  opening balances; each keyed by an idempotency key;
- ``sale_refunds``: the typed link from a sale to the void or reversal that refunded it, whose
  primary key lets a sale be refunded once whichever path tries second. It replaces the
  ``sales.voided_by`` column and its ``reversal:<posting>`` sentinel.

Existing rows are carried over: every voided_by becomes a sale_refunds row (a reversal also
gets its money_ops row), manual top-ups and adjustments become money_ops rows, and payment
events are grouped into payments by reference.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# As 0004 made it (typed, so the WHERE clause renders exactly as queries write it).
_sales = sa.table("sales", sa.column("needs_review", sa.Boolean()), sa.column("reviewed_at"))
_OPEN_SALES = sa.and_(_sales.c.needs_review, _sales.c.reviewed_at.is_(None))


def _ts() -> sa.types.TypeEngine[Any]:
    return sa.DateTime(timezone=True)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("payment_id", sa.String(64), primary_key=True),
        sa.Column("school_id", sa.String(64), nullable=True),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("wallet_id", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("credited", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("debited", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("credit_txn_id", sa.String(64), nullable=True),
        sa.Column("hold_reason", sa.String(40), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.Column("next_check_at", _ts(), nullable=True),
        sa.Column("check_attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("lease_until", _ts(), nullable=True),
        sa.Column("last_check_error", sa.String(200), nullable=True),
        sa.CheckConstraint("credited >= 0 AND debited >= 0 AND debited <= credited",
                           name="ck_payments_refund_within_credit"),
    )
    op.create_index("ix_payments_school_updated", "payments", ["school_id", "updated_at"])
    op.create_index("ix_payments_due", "payments", ["state", "next_check_at"])
    ref_given = sa.column("reference") != ""
    op.create_index("ux_payments_reference", "payments", ["reference"], unique=True,
                    sqlite_where=ref_given, postgresql_where=ref_given)

    op.create_table(
        "money_ops",
        sa.Column("op_id", sa.String(64), primary_key=True),
        sa.Column("school_id", sa.String(64), nullable=False),
        sa.Column("idem_key", sa.String(100), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("wallet_id", sa.String(64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("posting_id", sa.String(64), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=True),
        sa.Column("sale_ref", sa.String(64), nullable=True),
        sa.Column("payment_event_id", sa.String(200), nullable=True),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("actor", sa.String(64), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.CheckConstraint("amount <> 0", name="ck_money_ops_amount_nonzero"),
    )
    op.create_index("ux_money_ops_key", "money_ops", ["school_id", "idem_key"], unique=True)
    op.create_index("ux_money_ops_posting", "money_ops", ["posting_id"], unique=True)
    op.create_index("ix_money_ops_wallet", "money_ops", ["school_id", "wallet_id"])
    has_event = sa.column("payment_event_id").is_not(None)
    op.create_index("ux_money_ops_payment_event", "money_ops", ["payment_event_id"],
                    unique=True, sqlite_where=has_event, postgresql_where=has_event)

    op.create_table(
        "sale_refunds",
        sa.Column("school_id", sa.String(64), primary_key=True),
        sa.Column("sale_ref", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("void_ref", sa.String(64), nullable=True),
        sa.Column("op_id", sa.String(64), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("refunded_at", _ts(), nullable=False),
        sa.CheckConstraint(
            "(kind = 'void' AND void_ref IS NOT NULL AND op_id IS NULL) OR "
            "(kind = 'reversal' AND op_id IS NOT NULL AND void_ref IS NULL)",
            name="ck_sale_refunds_one_link"),
        sa.CheckConstraint("amount >= 0", name="ck_sale_refunds_amount"),
    )

    with op.batch_alter_table("payment_events") as batch:
        batch.add_column(sa.Column("payment_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("source", sa.String(20), nullable=False,
                                   server_default="webhook"))
        batch.add_column(sa.Column("resolution", sa.String(20), nullable=True))
    op.create_index("ix_payment_events_payment", "payment_events",
                    ["payment_id", "received_at"])

    bind = op.get_bind()
    _carry_refunds(bind)
    _carry_manual_money(bind)
    _carry_payments(bind)

    # SQLite rebuilds the table to drop a column; the partial index is re-made by hand so its
    # WHERE clause survives the copy.
    op.drop_index("ix_sales_open_review", table_name="sales")
    with op.batch_alter_table("sales") as batch:
        batch.drop_column("voided_by")
    op.create_index("ix_sales_open_review", "sales", ["school_id", "received_at"],
                    sqlite_where=_OPEN_SALES, postgresql_where=_OPEN_SALES)


def _carry_refunds(bind: sa.Connection) -> None:
    rows = bind.execute(sa.text(
        "SELECT s.school_id, s.ref, s.total, s.wallet_id, s.voided_by, s.received_at "
        "FROM sales s WHERE s.voided_by IS NOT NULL")).all()
    for r in rows:
        if r.voided_by.startswith("reversal:"):
            posting_id = r.voided_by.removeprefix("reversal:")
            p = bind.execute(sa.text(
                "SELECT posted_at, actor, memo FROM postings WHERE posting_id = :p"),
                {"p": posting_id}).one()
            op_id = _new_id("op")
            bind.execute(sa.text(
                "INSERT INTO money_ops (op_id, school_id, idem_key, content_hash, kind, "
                "wallet_id, amount, posting_id, sale_ref, reason, actor, created_at) VALUES "
                "(:op, :s, :k, '', 'reversal', :w, :a, :p, :ref, :memo, :actor, :at)"),
                {"op": op_id, "s": r.school_id, "k": f"migrated:{posting_id}", "w": r.wallet_id,
                 "a": int(r.total), "p": posting_id, "ref": r.ref, "memo": p.memo,
                 "actor": p.actor, "at": p.posted_at})
            bind.execute(sa.text(
                "INSERT INTO sale_refunds (school_id, sale_ref, kind, op_id, amount, "
                "refunded_at) VALUES (:s, :ref, 'reversal', :op, :a, :at)"),
                {"s": r.school_id, "ref": r.ref, "op": op_id, "a": int(r.total),
                 "at": p.posted_at})
        else:
            at = bind.execute(sa.text(
                "SELECT received_at FROM sales WHERE school_id = :s AND ref = :v"),
                {"s": r.school_id, "v": r.voided_by}).scalar_one_or_none()
            bind.execute(sa.text(
                "INSERT INTO sale_refunds (school_id, sale_ref, kind, void_ref, amount, "
                "refunded_at) VALUES (:s, :ref, 'void', :v, :a, :at)"),
                {"s": r.school_id, "ref": r.ref, "v": r.voided_by, "a": int(r.total),
                 "at": at or r.received_at})


def _carry_manual_money(bind: sa.Connection) -> None:
    """Top-ups and adjustments not made by a gateway event (admin forms, demo seeding); also,
    after a downgrade and upgrade, the kinds 0005 itself introduced."""
    rows = bind.execute(sa.text(
        "SELECT p.posting_id, p.school_id, p.kind, p.from_account, p.to_account, p.amount, "
        "p.memo, p.actor, p.posted_at FROM postings p "
        "WHERE p.kind IN ('topup', 'adjustment', 'opening', 'payment_credit') AND NOT EXISTS "
        "(SELECT 1 FROM payment_events e WHERE e.txn_id = p.posting_id)")).all()
    for r in rows:
        wallet = bind.execute(sa.text(
            "SELECT wallet_id FROM wallets WHERE wallet_id IN (:a, :b)"),
            {"a": r.from_account, "b": r.to_account}).scalar_one()
        amount = int(r.amount) if wallet == r.to_account else -int(r.amount)
        bind.execute(sa.text(
            "INSERT INTO money_ops (op_id, school_id, idem_key, content_hash, kind, wallet_id, "
            "amount, posting_id, reason, actor, created_at) VALUES "
            "(:op, :s, :k, '', :kind, :w, :a, :p, :memo, :actor, :at)"),
            {"op": _new_id("op"), "s": r.school_id, "k": f"migrated:{r.posting_id}",
             "kind": r.kind, "w": wallet, "a": amount, "p": r.posting_id, "memo": r.memo,
             "actor": r.actor, "at": r.posted_at})


def _carry_payments(bind: sa.Connection) -> None:
    """v1 events grouped by reference: credited -> completed, debited counts as refunded."""
    rows = bind.execute(sa.text(
        "SELECT event_id, school_id, event_type, wallet_id, amount, currency, reference, "
        "status, txn_id, received_at FROM payment_events ORDER BY received_at, event_id")).all()
    by_ref: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        by_ref[r.reference or f"\0{r.event_id}"].append(r)
    for ref, events in by_ref.items():
        first = events[0]
        credited = sum(int(e.amount) for e in events if e.status == "credited")
        debited = min(credited, sum(int(e.amount) for e in events if e.status == "debited"))
        if credited and debited >= credited:
            state = "refunded"
        elif credited:
            state = "completed"
        elif any(e.event_type == "payment.failed" for e in events):
            state = "failed"
        else:
            state = "held"
        credit_txn = next((e.txn_id for e in events if e.status == "credited"), None)
        payment_id = _new_id("pay")
        bind.execute(sa.text(
            "INSERT INTO payments (payment_id, school_id, reference, wallet_id, currency, "
            "amount, state, credited, debited, credit_txn_id, hold_reason, created_at, "
            "updated_at, check_attempts) VALUES (:id, :s, :ref, :w, :c, :a, :st, :cr, :db, "
            ":txn, :hold, :at, :now, 0)"),
            {"id": payment_id, "s": first.school_id,
             "ref": "" if ref.startswith("\0") else ref, "w": first.wallet_id,
             "c": first.currency, "a": int(first.amount), "st": state, "cr": credited,
             "db": debited, "txn": credit_txn,
             "hold": "migrated_v1" if state == "held" else None,
             "at": first.received_at, "now": events[-1].received_at})
        bind.execute(sa.text(
            "UPDATE payment_events SET payment_id = :id WHERE event_id IN :ids")
            .bindparams(sa.bindparam("ids", expanding=True)),
            {"id": payment_id, "ids": [e.event_id for e in events]})


def downgrade() -> None:
    op.drop_index("ix_sales_open_review", table_name="sales")
    with op.batch_alter_table("sales") as batch:
        batch.add_column(sa.Column("voided_by", sa.String(64), nullable=True))
    op.create_index("ix_sales_open_review", "sales", ["school_id", "received_at"],
                    sqlite_where=_OPEN_SALES, postgresql_where=_OPEN_SALES)
    bind = op.get_bind()
    for r in bind.execute(sa.text(
            "SELECT f.school_id, f.sale_ref, f.kind, f.void_ref, o.posting_id "
            "FROM sale_refunds f LEFT JOIN money_ops o ON o.op_id = f.op_id")).all():
        value = r.void_ref if r.kind == "void" else f"reversal:{r.posting_id}"
        bind.execute(sa.text(
            "UPDATE sales SET voided_by = :v WHERE school_id = :s AND ref = :ref"),
            {"v": value, "s": r.school_id, "ref": r.sale_ref})
    op.drop_index("ix_payment_events_payment", table_name="payment_events")
    with op.batch_alter_table("payment_events") as batch:
        batch.drop_column("resolution")
        batch.drop_column("source")
        batch.drop_column("payment_id")
    op.drop_table("sale_refunds")
    op.drop_index("ux_money_ops_payment_event", table_name="money_ops")
    op.drop_index("ix_money_ops_wallet", table_name="money_ops")
    op.drop_index("ux_money_ops_posting", table_name="money_ops")
    op.drop_index("ux_money_ops_key", table_name="money_ops")
    op.drop_table("money_ops")
    op.drop_index("ux_payments_reference", table_name="payments")
    op.drop_index("ix_payments_due", table_name="payments")
    op.drop_index("ix_payments_school_updated", table_name="payments")
    op.drop_table("payments")
