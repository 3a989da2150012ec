"""The terminal's durable local state: one SQLite file in the data directory.

Everything the terminal must not lose (enrollment, the outbox of sales, the last snapshot)
lives here, written with WAL and ``synchronous=FULL`` so a sale reported as done survives a
power cut.
"""
