"""Every offline rule refuses with its reason code and accepts exactly at its boundary, through
the same Terminal.record_sale the CLI and the GUI call. Refused sales use no seq."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminal.core import Terminal
from terminal.errors import SaleRefused
from terminal.store import outbox

from .conftest import Page, SettableClock, bracelet, offline_terminal, wallet

UID = "04A1B2C3D4E5F6"


def make(tmp_path: Path, clock: SettableClock, *, balance: int = 5000,
         daily_limit: int | None = None, wallet_status: str = "active",
         bracelet_status: str = "active", **settings: int | str) -> Terminal:
    page = Page(wallets=[wallet("w1", balance, daily_limit=daily_limit, status=wallet_status)],
                credentials=[bracelet(UID, "w1", bracelet_status)])
    page.settings.update(settings)
    return offline_terminal(tmp_path, page, clock)


def refused(term: Terminal, items: list[tuple[str, int]], **kw: str) -> str:
    before = outbox.last_seq(term.db.conn)
    with pytest.raises(SaleRefused) as info:
        term.record_sale(kw.pop("cashier", "cash1"), items, **({"uid": UID} | kw))
    assert outbox.last_seq(term.db.conn) == before, "a refused sale must not use a seq"
    assert info.value.message.endswith(".")
    return info.value.code


def test_exact_balance_is_accepted_one_more_is_refused(tmp_path: Path, clock) -> None:
    term = make(tmp_path, clock, balance=1350)
    first = term.record_sale("cash1", [("meal", 1)], uid=UID)          # 1350 - 1200 = 150
    assert first.balance_estimate == 150
    assert refused(term, [("water", 2)]) == "insufficient_balance"     # 300 > 150
    last = term.record_sale("cash1", [("water", 1)], uid=UID)          # exactly 150
    assert (last.seq, last.balance_estimate) == (2, 0)
    assert refused(term, [("water", 1)]) == "insufficient_balance"


def test_overdraft_limit_extends_the_floor(tmp_path: Path, clock) -> None:
    term = make(tmp_path, clock, balance=100, overdraft_limit=200)
    assert term.record_sale("cash1", [("water", 2)], uid=UID).balance_estimate == -200
    assert refused(term, [("water", 1)]) == "insufficient_balance"


def test_daily_limit_is_inclusive_and_resets_at_school_midnight(tmp_path: Path,
                                                                  clock) -> None:
    term = make(tmp_path, clock, balance=10000, daily_limit=1500)
    clock.now = clock.now.replace(hour=20, minute=30)      # 23:30 in Riyadh
    term.record_sale("cash1", [("meal", 1)], uid=UID)
    assert refused(term, [("water", 3)]) == "daily_limit"  # 1650 > 1500
    term.record_sale("cash1", [("water", 2)], uid=UID)     # exactly 1500
    assert refused(term, [("water", 1)]) == "daily_limit"
    clock.advance(minutes=31)                             # 00:01 next day in Riyadh, 21:01 UTC
    assert term.record_sale("cash1", [("meal", 1)], uid=UID).seq == 3


def test_voided_sale_no_longer_counts_toward_the_daily_limit(tmp_path: Path, clock) -> None:
    term = make(tmp_path, clock, balance=10000, daily_limit=1200)
    sale = term.record_sale("cash1", [("meal", 1)], uid=UID)
    assert refused(term, [("water", 1)]) == "daily_limit"
    void = term.void(sale.ref, "cash1")
    assert void.balance_estimate == 10000
    assert term.record_sale("cash1", [("meal", 1)], uid=UID).balance_estimate == 8800


@pytest.mark.parametrize(("wallet_status", "bracelet_status", "code"), [
    ("frozen", "active", "wallet_frozen"),
    ("closed", "active", "wallet_closed"),
    ("active", "blocked", "credential_blocked"),
])
def test_blocked_bracelet_and_frozen_or_closed_wallet(tmp_path: Path, clock, wallet_status,
                                                      bracelet_status, code) -> None:
    term = make(tmp_path, clock, wallet_status=wallet_status, bracelet_status=bracelet_status)
    assert refused(term, [("water", 1)]) == code


def test_unknown_bracelet_product_cashier_and_empty_cart(tmp_path: Path, clock) -> None:
    term = make(tmp_path, clock)
    assert refused(term, [("water", 1)], uid="04FFFFFFFFFFFF") == "credential_unknown"
    assert refused(term, [("water", 1)], uid="not hex") == "credential_unknown"
    assert refused(term, [("water", 1)], uid=None, wallet_id="nobody") == "credential_unknown"
    assert refused(term, [("nope", 1)]) == "product_unknown"
    assert refused(term, [("old", 1)]) == "product_unknown"          # inactive product
    assert refused(term, [("water", 1)], cashier="ghost") == "cashier_unknown"
    assert refused(term, [("water", 1)], cashier="gone") == "cashier_unknown"  # inactive
    assert refused(term, []) == "empty_cart"
    # reader output with separators and lower case is the same bracelet
    assert term.record_sale("cash1", [("water", 1)], uid="04:a1:b2:c3:d4:e5:f6").seq == 1
    assert term.record_sale("cash1", [("water", 1)], wallet_id="w1").seq == 2  # by hand


def test_offline_per_sale_cap_is_inclusive(tmp_path: Path, clock) -> None:
    term = make(tmp_path, clock, balance=100000, offline_max_sale=2400)
    assert term.record_sale("cash1", [("meal", 2)], uid=UID).total == 2400
    assert refused(term, [("meal", 2), ("water", 1)]) == "offline_sale_cap"


def test_unsynced_total_cap_counts_unanswered_sales(tmp_path: Path, clock) -> None:
    term = make(tmp_path, clock, balance=100000, offline_max_sale=5000,
                offline_max_unsynced_total=3600)
    term.record_sale("cash1", [("meal", 2)], uid=UID)
    term.record_sale("cash1", [("meal", 1)], uid=UID)                 # exactly 3600
    assert refused(term, [("water", 1)]) == "offline_total_cap"


def test_too_long_offline_counts_from_last_successful_sync(tmp_path: Path, clock) -> None:
    term = make(tmp_path, clock, offline_max_hours=72)
    clock.advance(hours=72)
    assert term.record_sale("cash1", [("water", 1)], uid=UID).seq == 1   # exactly 72 h
    clock.advance(seconds=1)
    assert refused(term, [("water", 1)]) == "offline_too_long"
    # a failed contact does not count as a sync
    term.sync_once()
    assert term.status()["server_reachable"] is False
    assert refused(term, [("water", 1)]) == "offline_too_long"


def test_refusal_messages_are_plain_sentences(tmp_path: Path, clock) -> None:
    term = make(tmp_path, clock, balance=100)
    with pytest.raises(SaleRefused) as info:
        term.record_sale("cash1", [("meal", 1)], uid=UID)
    assert info.value.message == "Not enough balance: 1.00 SAR available, the sale is 12.00 SAR."
    assert UID not in info.value.message


def test_daily_limit_refusal_says_how_much_is_left_today(tmp_path: Path, clock) -> None:
    term = make(tmp_path, clock, balance=10000, daily_limit=1500)
    term.record_sale("cash1", [("meal", 1)], uid=UID)                  # 12.00 of 15.00
    with pytest.raises(SaleRefused) as info:
        term.record_sale("cash1", [("water", 3)], uid=UID)
    assert info.value.message == ("Daily limit: 3.00 SAR left today of 15.00 SAR; "
                                  "this sale is 4.50 SAR.")
    assert dict(info.value.values) == {"left": "3.00 SAR", "limit": "15.00 SAR",
                                       "total": "4.50 SAR"}
    term.record_sale("cash1", [("water", 2)], uid=UID)                 # exactly 15.00
    with pytest.raises(SaleRefused) as info:
        term.record_sale("cash1", [("water", 1)], uid=UID)
    assert info.value.values["left"] == "0.00 SAR"


def test_daily_limit_left_is_never_negative() -> None:
    from terminal.selling.rules import SaleFacts, check_sale

    facts = SaleFacts(
        currency="SAR", device_revoked=False, cashier_known=True, cart_total=150,
        cart_empty=False, unknown_products=0, hours_since_sync=1, offline_max_hours=72,
        clock_shows="", clock_behind=None, credential_found=True, credential_blocked=False,
        wallet_status="active", offline_max_sale=5000, offline_max_unsynced_total=20000,
        unanswered_total=0, daily_limit=1500, spent_today=2000,   # other tills went over
        balance=10000, unsettled_spending=0, overdraft_limit=0)
    problem = check_sale(facts)
    assert problem is not None and problem.values["left"] == "0.00 SAR"


def test_never_synced_says_so(tmp_path: Path, clock) -> None:
    term = make(tmp_path, clock)
    with term.db.conn:   # a snapshot pulled, but push and pull never both finished
        term.db.conn.execute("UPDATE sync_state SET last_sync_at = NULL")
    with pytest.raises(SaleRefused) as info:
        term.record_sale("cash1", [("water", 1)], uid=UID)
    assert info.value.code == "offline_too_long" and info.value.key == "never_synced"
    assert info.value.message.startswith("This terminal has never synced")


def test_every_sentence_fills_exactly_its_placeholders_and_has_a_known_code() -> None:
    """The till translates a refusal by ``key`` and ``values``: every template's placeholders
    are the values its refusal carries, and every code is one the spec (or docs) names."""
    import string

    from terminal.selling.rules import CODES, MESSAGES, refusal

    known = {"device_revoked", "cashier_unknown", "empty_cart", "product_unknown",
             "offline_too_long", "credential_unknown", "credential_blocked", "wallet_closed",
             "wallet_frozen", "offline_sale_cap", "offline_total_cap", "daily_limit",
             "insufficient_balance", "restricted_item", "void_target_unknown",
             "void_target_not_posted", "void_twice"}
    for key, template in MESSAGES.items():
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f}
        made = refusal(key, **{name: f"<{name}>" for name in names})
        assert made.key == key and set(made.values) == names
        assert made.code == CODES.get(key, key) and made.code in known, key
        assert "{" not in made.message and all(f"<{n}>" in made.message for n in names)
    assert set(CODES) <= set(MESSAGES)
