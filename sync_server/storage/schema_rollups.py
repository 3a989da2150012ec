"""Report rollups kept by the ledger (0011): what sold per school day, hour and item, and
what each wallet's balance moved per school day.

Kept apart from :mod:`sync_server.storage.schema` (which imports this module at its end, so
its ``metadata`` holds these tables too). Both are summaries of ledger rows, written in the
same transaction as the rows they summarise (:mod:`sync_server.reports.rollup_writes`) and
checked against them by ``audit-ledger``; the breakdown and balances-at-a-date reports read
them instead of a year of sales and postings.
"""

from __future__ import annotations

import sqlalchemy as sa

from .schema import Money, metadata

__all__ = ["sales_item_days", "wallet_day_nets"]

# Net sold per (school day, local hour, item as sold): sale lines count positive on the sale's
# business day and the local hour of its created_at, a void's lines negative likewise, an
# admin reversal's (the reversed sale's lines) negative on the local day and hour it was
# recorded. ``name`` is the line's name as sold ('' when it had none), part of the key so the
# report can still show the name a deleted product sold under. Rows are never deleted: a sale
# voided the same hour leaves a row of zeros, as the line expansion it replaces did.
sales_item_days = sa.Table(
    "sales_item_days", metadata,
    sa.Column("school_id", sa.String(64), primary_key=True),
    sa.Column("business_day", sa.String(10), primary_key=True),  # school-local YYYY-MM-DD
    sa.Column("hour", sa.SmallInteger, primary_key=True),         # school-local 0-23
    sa.Column("product_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("quantity", sa.BigInteger, nullable=False),
    sa.Column("amount", Money, nullable=False),                   # quantity x unit price
)

# Net change of each wallet's balance per school-local day of the postings' ``posted_at``
# (when the ledger learnt of them, see reports/balances.py). A balance at the end of day D is
# the sum of the nets up to D, or today's balance minus the nets after D.
wallet_day_nets = sa.Table(
    "wallet_day_nets", metadata,
    sa.Column("wallet_id", sa.String(64), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),            # school-local YYYY-MM-DD
    sa.Column("school_id", sa.String(64), nullable=False),
    sa.Column("net", Money, nullable=False),
    sa.Index("ix_wallet_day_nets_school_day", "school_id", "day", "wallet_id", "net"),
)
