"""Reports for the school office: Z report, sales breakdowns, money flows, balances.

Queries only: each module reads the ledger's tables with set-based SQL and returns frozen
dataclasses; the console (sync_server/admin/reports*.py) renders them and exports CSV.
"""
