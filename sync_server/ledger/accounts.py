"""The accounts of a school: one per wallet (same ID) plus a few system accounts.

Sign convention: a positive posting on a wallet account increases what the student can
spend. A sale posts ``-total`` on the wallet and ``+total`` on revenue; a top-up posts
``+amount`` on the wallet and ``-amount`` on top-up clearing (money received from the gateway).
"""

from __future__ import annotations

REVENUE = "revenue"
TOPUP_CLEARING = "topup_clearing"
ADJUSTMENTS = "adjustments"
SYSTEM_KINDS = (REVENUE, TOPUP_CLEARING, ADJUSTMENTS)


def system_account(school_id: str, kind: str) -> str:
    if kind not in SYSTEM_KINDS:
        raise ValueError(f"unknown system account kind {kind!r}")
    return f"{school_id}:{kind}"
