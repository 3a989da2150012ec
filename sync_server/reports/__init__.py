"""Reports for the school office: Z report, sales breakdowns, money flows, balances.

Queries, except :mod:`.rollup_writes`: each module reads the ledger's tables (or the rollups
the ledger keeps for the breakdown and balances at a date, :mod:`.rollup_writes` called from
the ledger's own transactions) with set-based SQL and returns frozen dataclasses; the console
(sync_server/admin/reports*.py) renders them and exports CSV.
"""
