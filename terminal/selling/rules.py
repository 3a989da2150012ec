"""The offline authorization rules: one function the CLI and the cashier app both call.

Every sale on this terminal is authorized here, offline, against the last snapshot: the
protocol has no online authorization, so the school's "offline" caps apply to every sale, not
only while the network is down (a terminal that is "online" may lose the network between two
taps, and the money at risk is the same).

The order of the checks is the order a cashier would want to hear about problems: a terminal
the school revoked first (nothing else matters then), who is selling, what is in the cart,
whether this terminal may sell at all, whose bracelet it is, and only then the amounts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.money import format_minor

# The sentence the cashier sees for each refusal, by template key. The key is the spec's refusal
# code, except where one code has several sentences (CODES below). The cashier app translates
# a refusal by its ``key`` and ``values`` (terminal/ui/i18n), so the placeholder names here are
# part of that contract: renaming one breaks the Arabic sentence. Placeholders by key:
#   offline_too_long: hours, limit        never_synced: limit
#   clock_behind: shows, known            offline_sale_cap: cap, total
#   offline_total_cap: unsynced, cap      daily_limit: left, limit, total
#   insufficient_balance: available, total
#   restricted_product: item              restricted_category: item, category
#   restricted_allergen: item, allergen   (every other key has none)
# Amounts arrive formatted ("12.50 SAR"), times as the school's local "YYYY-MM-DD HH:MM".
MESSAGES = {
    # Not one of the spec's codes: see "A revoked terminal" in docs/terminal.md for why.
    "device_revoked": ("This terminal has been revoked by the school office, so it cannot "
                       "sell. Sales already saved stay on it. Call the school office."),
    "cashier_unknown": "Cashier not recognised on this terminal. Please log in again.",
    "empty_cart": "The cart is empty. Add at least one item.",
    "product_unknown": "An item in the cart is no longer sold here. Remove it and try again.",
    "offline_too_long": ("This terminal has not synced for {hours} hours (the limit is {limit}). "
                         "Connect it to the network and sync before selling."),
    # offline_too_long again, for a clock that went back (see clock_behind)
    "clock_behind": ("This terminal's clock is behind: it shows {shows}, but this terminal "
                     "has already seen {known}. Set the correct date and time, then sync "
                     "before selling."),
    # offline_too_long again, for a terminal that never completed a sync
    "never_synced": ("This terminal has never synced (the limit is {limit} hours without a "
                     "sync). Connect it to the network and sync before selling."),
    "credential_unknown": "This bracelet is not registered. Send the student to the office.",
    "credential_blocked": ("This bracelet is blocked (lost or replaced). "
                           "Send the student to the office."),
    "wallet_closed": "This student's account is closed. No purchases are possible.",
    "wallet_frozen": "This student's account is frozen. Purchases are paused by the school.",
    "offline_sale_cap": "Sales above {cap} are not allowed on this terminal. This one is {total}.",
    "offline_total_cap": ("Too much is waiting to be synced ({unsynced}; the limit is {cap}). "
                          "Connect to the network and sync before selling more."),
    "daily_limit": "Daily limit: {left} left today of {limit}; this sale is {total}.",
    "insufficient_balance": "Not enough balance: {available} available, the sale is {total}.",
    # voids (the spec's sell codes do not cover them; names mirror the server's reject codes)
    "void_target_unknown": "There is no sale with this reference on this terminal to void.",
    "void_target_not_posted": "The server did not accept this sale, so there is nothing to void.",
    "void_twice": "This sale has already been voided.",
    "void_of_void": "This is a void, not a sale: it cannot be voided.",
    # restricted_item (spec v1.1): the item and the restriction that blocks it
    "restricted_product": ("{item} is not allowed for this student: the school blocked this "
                           "item for this student."),
    "restricted_category": ("{item} is not allowed for this student: the school blocked the "
                            "category {category} for this student."),
    "restricted_allergen": "{item} is not allowed for this student: allergy to {allergen}.",
}

# The refusal code (CLI, wire, tests) of the template keys that are not codes themselves.
CODES = {
    "clock_behind": "offline_too_long",
    "never_synced": "offline_too_long",
    "void_of_void": "void_target_unknown",
    "restricted_product": "restricted_item",
    "restricted_category": "restricted_item",
    "restricted_allergen": "restricted_item",
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why something was refused: ``code`` for programs, ``message`` in English for logs and
    the CLI, and ``key`` + ``values`` so a view can say it in the cashier's language
    (``translated_template[key].format(**values)``)."""

    code: str
    message: str
    key: str = ""
    values: Mapping[str, str] = field(default_factory=dict)


def refusal(key: str, **values: object) -> Refusal:
    words = {name: str(value) for name, value in values.items()}
    return Refusal(CODES.get(key, key), MESSAGES[key].format(**words), key, words)


# How far behind a time this terminal has already seen its clock may be before it is taken to
# be wrong: the server's and the terminal's clocks are two clocks (the server flags
# ``clock_skew`` at the same 5 minutes the other way), and NTP may step a clock back a little.
CLOCK_TOLERANCE = timedelta(minutes=5)


def clock_behind(now: datetime, *, server_time: datetime | None,
                 latest_recorded: datetime | None, latest_day: str | None,
                 today: str) -> datetime | None:
    """The time this terminal's clock should be past and is not, or ``None`` if it is fine.

    The clock is wrong when it is more than :data:`CLOCK_TOLERANCE` before the server's time
    at the last complete pull, or before a sale recorded here since the last successful sync;
    and when it puts today before the school day of such a sale, however small the step (a
    sale must never land in a day that is already over). A wrong clock could otherwise reopen
    the ``offline_max_hours`` window or move sales into an earlier day's limit.
    """
    for known in (server_time, latest_recorded):
        if known is not None and now < known - CLOCK_TOLERANCE:
            return known
    if latest_day is not None and today < latest_day:
        return latest_recorded or now
    return None


@dataclass(frozen=True, slots=True)
class SaleFacts:
    """Everything the rules need, gathered by the core in the sale's transaction."""

    currency: str
    device_revoked: bool             # the server answered 403 device-revoked (nothing sold
                                     # here could ever reach the ledger)
    cashier_known: bool              # exists and is active in the snapshot
    cart_total: int
    cart_empty: bool
    unknown_products: int            # products missing from the snapshot or inactive
    hours_since_sync: float | None   # None: never synced
    offline_max_hours: int
    clock_shows: str                 # now, as the cashier reads it
    clock_behind: str | None         # the later time already seen (see clock_behind); None: ok
    credential_found: bool           # bracelet (or, by hand, the wallet) is in the snapshot
    credential_blocked: bool
    wallet_status: str | None        # active | frozen | closed; None: wallet missing
    offline_max_sale: int
    offline_max_unsynced_total: int
    unanswered_total: int            # this terminal's sales the server has not answered yet
    daily_limit: int | None
    spent_today: int                 # server's spent_today + this terminal's sales not in it
    balance: int                     # snapshot balance
    unsettled_spending: int          # this terminal's spending not yet in that balance
    overdraft_limit: int
    restriction: Refusal | None = None  # the first cart line the wallet's restrictions block


def check_sale(f: SaleFacts) -> Refusal | None:
    """``None`` when the sale may be recorded; otherwise the first rule that refuses it.

    Every limit is inclusive: a sale that brings the balance exactly to the allowed floor, or
    spending exactly to the daily limit, is accepted.
    """
    money = _formatter(f.currency)
    if f.device_revoked:
        return refusal("device_revoked")
    if not f.cashier_known:
        return refusal("cashier_unknown")
    if f.cart_empty:
        return refusal("empty_cart")
    if f.unknown_products:
        return refusal("product_unknown")
    if f.clock_behind is not None:
        return refusal("clock_behind", shows=f.clock_shows, known=f.clock_behind)
    if f.hours_since_sync is None:
        return refusal("never_synced", limit=f.offline_max_hours)
    if f.hours_since_sync > f.offline_max_hours:
        return refusal("offline_too_long", hours=int(f.hours_since_sync),
                       limit=f.offline_max_hours)
    if not f.credential_found or f.wallet_status is None:
        return refusal("credential_unknown")
    if f.credential_blocked:
        return refusal("credential_blocked")
    if f.wallet_status == "closed":
        return refusal("wallet_closed")
    if f.wallet_status != "active":
        return refusal("wallet_frozen")
    if f.restriction is not None:
        return f.restriction
    if f.cart_total > f.offline_max_sale:
        return refusal("offline_sale_cap", cap=money(f.offline_max_sale),
                       total=money(f.cart_total))
    if f.unanswered_total + f.cart_total > f.offline_max_unsynced_total:
        return refusal("offline_total_cap", unsynced=money(f.unanswered_total),
                       cap=money(f.offline_max_unsynced_total))
    if f.daily_limit is not None and f.spent_today + f.cart_total > f.daily_limit:
        return refusal("daily_limit", left=money(max(0, f.daily_limit - f.spent_today)),
                       limit=money(f.daily_limit), total=money(f.cart_total))
    available = f.balance - f.unsettled_spending + f.overdraft_limit
    if f.cart_total > available:
        return refusal("insufficient_balance", available=money(max(available, 0)),
                       total=money(f.cart_total))
    return None


def _formatter(currency: str) -> Callable[[int], str]:
    def money(amount: int) -> str:
        return format_minor(amount, currency)
    return money
