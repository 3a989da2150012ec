"""Double-entry wallet ledger: postings, exactly-once sale application, audit.

Invariants (checked by ``pos-server audit-ledger`` and the property tests):
- each transaction's postings sum to zero, so every school's postings sum to zero;
- a wallet's cached balance equals the sum of its account's postings;
- a sale ref is posted at most once per school.
"""
