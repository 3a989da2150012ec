"""The bounds money stays within, whatever a till, the gateway or an admin sends.

Balances are BIGINT (int64) in the database, and ``balance = balance + :delta`` is computed
there: past 9.2 x 10^18 PostgreSQL refuses the statement (every retry of the push fails the
same way) and SQLite silently turns the balance into a float. So every movement of money is
checked here before it is written, by the one function all paths call:

- a wallet's balance stays within [:data:`BALANCE_FLOOR`, :data:`BALANCE_CEILING`]: +-10^12
  minor units, the largest single sale the wire allows. No till's offline overdraft comes
  near it (it is bounded by the school's caps), so only a broken or hostile client reaches it;
  even a school of a million wallets, all at a bound, sums to 10^18, inside int64;
- a time the server's calendar cannot hold (Python's years 1 to 9999, in every time zone an
  admin may read it in) is stored clamped to [:data:`EARLIEST_STORED`,
  :data:`LATEST_STORED`]; the sale itself keeps its place (see ``judge.prepare``).

Movements that would cross a bound are refused with :data:`CODE`: a pushed sale or void is
``rejected`` per sale (kept for review, so the terminal's queue moves on), an admin
operation is refused with words, a gateway credit or debit is held for an admin.
"""

from __future__ import annotations

from datetime import UTC, datetime

BALANCE_FLOOR = -(10**12)
BALANCE_CEILING = 10**12
CODE = "balance_out_of_bounds"
WORDS = (f"this would take the wallet's balance outside the server's bounds "
         f"({BALANCE_FLOOR} to {BALANCE_CEILING} minor units); nothing was moved")

# A day inside each end of the calendar, so any time zone's offset stays on it.
EARLIEST_STORED = datetime(1, 1, 2, tzinfo=UTC)
LATEST_STORED = datetime(9999, 12, 30, tzinfo=UTC)
EARLIEST_EPOCH = EARLIEST_STORED.timestamp()
LATEST_EPOCH = LATEST_STORED.timestamp()


def balance_holds(balance: int) -> bool:
    """True when a wallet may hold ``balance`` (both bounds inclusive)."""
    return BALANCE_FLOOR <= balance <= BALANCE_CEILING


def storable(moment: datetime, epoch: float) -> datetime:
    """``moment`` (whose epoch seconds are ``epoch``), or the nearest time the server can
    store and show in any time zone."""
    if epoch < EARLIEST_EPOCH:
        return EARLIEST_STORED
    if epoch > LATEST_EPOCH:
        return LATEST_STORED
    return moment
