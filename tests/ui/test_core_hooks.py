"""The small Qt-free pieces the app relies on: tap de-duplication, alerts, name lookup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from terminal.core import Terminal
from terminal.selling.alerts import AlertFacts, alerts
from terminal.selling.cart import Cart
from terminal.selling.taps import TapGuard
from tests.ui.conftest import offline_terminal, wallet


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_same_bracelet_within_a_second_is_one_tap() -> None:
    clock = FakeClock()
    guard = TapGuard(1.0, clock)
    assert guard.admit("04aabbccddeeff")
    clock.now += 0.3
    assert not guard.admit("04AABBCCDDEEFF")      # same UID, any case: a repeat
    assert guard.admit("04AABBCCDDEE00")           # the next student is never held up
    clock.now += 0.9
    assert not guard.admit("04AABBCCDDEEFF")       # still re-read: the window slides
    clock.now += 1.01
    assert guard.admit("04AABBCCDDEEFF")           # away for a whole window: a new tap


def test_guard_forgets_old_bracelets() -> None:
    clock = FakeClock()
    guard = TapGuard(1.0, clock)
    for i in range(300):
        clock.now += 0.01
        guard.admit(f"04{i:012X}")
    clock.now += 5
    guard.admit("04FFFFFFFFFFFF")
    assert len(guard._last_seen) <= 257


def facts(**overrides: object) -> AlertFacts:
    base = {"currency": "SAR", "enrolled": True, "server_reachable": True,
            "ever_contacted": True, "auth_problem": None, "unanswered_total": 0,
            "offline_max_unsynced_total": 10_000, "hours_since_sync": 1.0,
            "offline_max_hours": 72, "unreviewed": 0}
    base.update(overrides)
    return AlertFacts(**base)  # type: ignore[arg-type]


def test_alerts_say_what_is_wrong_most_urgent_first() -> None:
    assert alerts(facts()) == []
    assert alerts(facts(enrolled=False, auth_problem="revoked")) == []
    codes = [a.code for a in alerts(facts(
        auth_problem="revoked", unreviewed=2, unanswered_total=8_000, hours_since_sync=60,
        server_reachable=False))]
    assert codes == ["device_revoked", "sales_need_review", "offline_total_nearly",
                     "offline_hours_nearly"]  # revoked, so not also "offline"
    assert [a.code for a in alerts(facts(unanswered_total=7_999))] == []
    offline = alerts(facts(server_reachable=False))
    assert [(a.level, a.code) for a in offline] == [("warning", "offline")]
    assert "2 sales were rejected" in alerts(facts(unreviewed=2))[0].message
    assert "80.00 SAR waiting" in alerts(facts(unanswered_total=8_000))[0].message


def test_cart_set_quantity_keeps_order() -> None:
    cart = Cart()
    cart.add("a", "A", 100)
    cart.add("b", "B", 200)
    cart.set_quantity("a", 3)
    assert [(line.product_id, line.quantity) for line in cart.lines] == [("a", 3), ("b", 1)]
    cart.set_quantity("a", 0)
    assert [line.product_id for line in cart.lines] == ["b"]


def test_name_lookup_bracelets_and_review_dismissal(tmp_path: Path) -> None:
    term: Terminal = offline_terminal(
        tmp_path / "t", "http://127.0.0.1:9",
        [wallet("w1", "Sara Khalid", 5000), wallet("w2", "Omar 100%_x", 5000),
         wallet("w3", "sarah B.", 5000)],
        [{"uid": "04AA000000000001", "wallet_id": "w1", "status": "active"},
         {"uid": "04AA000000000009", "wallet_id": "w1", "status": "blocked"}])
    assert [v.wallet_id for v in term.search_wallets("sara")] == ["w1", "w3"]
    assert [v.wallet_id for v in term.search_wallets("100%_")] == ["w2"]
    assert term.search_wallets("a%") == [] and term.search_wallets("  ") == []  # % is literal
    assert term.bracelets() == [("04AA000000000001", "Sara Khalid", "active"),
                                ("04AA000000000009", "Sara Khalid", "blocked")]
    receipt = term.record_sale("cash1", [("water", 2)], wallet_id="w3")
    assert receipt.total == 300
    assert term.history(1)[0].credential_uid is None
    assert term.currency() == "SAR"
    # a sale the server rejected shows until dismissed
    term.db.conn.execute("UPDATE outbox SET outcome = 'rejected', acked = 1")
    assert [a.code for a in term.alerts()] == ["sales_need_review"]
    term.dismiss_review()
    assert term.alerts() == []
    # nearly out of offline time
    late = Terminal(tmp_path / "t", clock=lambda: datetime.now(UTC) + timedelta(hours=60))
    assert [a.code for a in late.alerts()] == ["offline_hours_nearly"]
