"""Allergies and item restrictions (spec v1.1) refused on the till, offline, before any sale
is written: by product, by category and by allergen, with a sentence naming the item and the
reason, and the same refusal through the CLI (exit 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from terminal.core import Terminal
from terminal.errors import SaleRefused
from terminal.store import outbox

from .cli_run import pos_terminal_json
from .conftest import PRODUCTS, Page, SettableClock, bracelet, offline_terminal, wallet

UID = "04A1B2C3D4E5F6"
COOKIE = {"product_id": "cookie", "name": "Peanut Cookie", "price": 300, "category": "Snacks",
          "active": True, "allergens": ["peanut", "gluten"]}
CHIPS = {"product_id": "chips", "name": "Chips", "price": 200, "category": "Snacks",
         "active": True, "allergens": []}
LABAN = {"product_id": "laban", "name": "Laban", "price": 250, "category": "Drinks",
         "active": True, "allergens": ["milk"]}


def student(restrictions: dict[str, list[str]] | None, wallet_id: str = "w1",
            **extra: Any) -> dict[str, Any]:
    row = wallet(wallet_id, 10_000, name="Sara A.")
    if restrictions is not None:
        row["restrictions"] = restrictions
    return {**row, **extra}


def till(tmp_path: Path, restrictions: dict[str, list[str]] | None,
         clock: SettableClock | None = None) -> Terminal:
    page = Page(wallets=[student(restrictions), wallet("w2", 10_000, name="Omar B.")],
                credentials=[bracelet(UID, "w1"), bracelet("04FFEEDDCC", "w2")],
                products=[*PRODUCTS, COOKIE, CHIPS, LABAN])
    return offline_terminal(tmp_path / "t", page, clock)


def refused(term: Terminal, items: list[tuple[str, int]], **who: str) -> SaleRefused:
    with pytest.raises(SaleRefused) as caught:
        term.record_sale("cash1", items, **(who or {"uid": UID}))
    return caught.value


@pytest.mark.parametrize(("restrictions", "item", "message", "values"), [
    ({"allergens": ["peanut"]}, "cookie",
     "Peanut Cookie is not allowed for this student: allergy to peanut.",
     {"item": "Peanut Cookie", "allergen": "peanut"}),
    ({"blocked_categories": ["Snacks"]}, "chips",
     "Chips is not allowed for this student: the school blocked the category Snacks for this "
     "student.", {"item": "Chips", "category": "Snacks"}),
    ({"blocked_products": ["laban"]}, "laban",
     "Laban is not allowed for this student: the school blocked this item for this student.",
     {"item": "Laban"}),
])
def test_restricted_item_refused_offline_with_item_and_reason(
        tmp_path: Path, restrictions: dict[str, list[str]], item: str, message: str,
        values: dict[str, str]) -> None:
    term = till(tmp_path, restrictions)
    # the UI's question the moment the item is added for the tapped student
    early = term.item_refusal(item, uid=UID)
    assert early is not None and early.code == "restricted_item"
    assert early.message == message and dict(early.values) == values
    assert term.item_refusal(item, wallet_id="w1") == early       # looked up by hand: same
    # and the sale itself, with other items around it: refused, nothing written
    problem = refused(term, [("water", 1), (item, 2)])
    assert problem.code == "restricted_item" and problem.message == message
    assert problem.refusal == early and problem.key == early.key
    assert outbox.last_seq(term.db.conn) == 0
    assert term.status()["queued"] == 0
    # another student, without restrictions, buys the same thing
    assert term.item_refusal(item, wallet_id="w2") is None
    assert term.record_sale("cash1", [(item, 1)], wallet_id="w2").total > 0


def test_unrestricted_items_still_sell_to_a_restricted_student(tmp_path: Path) -> None:
    term = till(tmp_path, {"allergens": ["peanut"], "blocked_categories": ["Food"],
                           "blocked_products": ["laban"]})
    assert term.item_refusal("water", uid=UID) is None
    assert term.item_refusal("chips", uid=UID) is None     # Snacks, but no peanut in it
    receipt = term.record_sale("cash1", [("water", 1), ("chips", 1)], uid=UID)
    assert receipt.total == 350
    assert refused(term, [("meal", 1)]).message.startswith("Lunch is not allowed")


def test_product_then_category_then_allergen_like_the_server(tmp_path: Path) -> None:
    """One sentence per item, chosen in the server's order, so the till and the exceptions
    queue name the same restriction."""
    term = till(tmp_path, {"allergens": ["gluten", "peanut"], "blocked_categories": ["Snacks"],
                           "blocked_products": ["cookie"]})
    problem = term.item_refusal("cookie", uid=UID)
    assert problem is not None and problem.key == "restricted_product"
    term2 = till(tmp_path / "2", {"allergens": ["gluten", "peanut"],
                                  "blocked_categories": ["Snacks"]})
    problem = term2.item_refusal("cookie", uid=UID)
    assert problem is not None and problem.key == "restricted_category"
    term3 = till(tmp_path / "3", {"allergens": ["peanut", "gluten"]})
    problem = term3.item_refusal("cookie", uid=UID)
    assert problem is not None and problem.values["allergen"] == "gluten"  # name order


def test_restriction_outranks_money_but_not_a_blocked_bracelet(tmp_path: Path) -> None:
    page = Page(wallets=[student({"allergens": ["peanut"]}), ],
                credentials=[bracelet(UID, "w1"), bracelet("04BBBBBB", "w1", "blocked")],
                products=[*PRODUCTS, COOKIE])
    term = offline_terminal(tmp_path / "t", page)
    assert refused(term, [("cookie", 100)]).code == "restricted_item"   # also over the caps
    assert refused(term, [("cookie", 1)], uid="04BBBBBB").code == "credential_blocked"


def test_unknown_student_or_product_is_no_restriction_answer(tmp_path: Path) -> None:
    term = till(tmp_path, {"allergens": ["peanut"]})
    assert term.item_refusal("cookie", uid="04DEADBEEF") is None
    assert term.item_refusal("cookie", uid="not hex") is None
    assert term.item_refusal("nothing", uid=UID) is None
    assert term.item_refusal("cookie", wallet_id="nobody") is None


def test_a_server_without_restrictions_restricts_nothing(tmp_path: Path) -> None:
    """A v1.0 server sends no ``restrictions`` and no ``allergens``: nothing is refused."""
    plain_cookie = {k: v for k, v in COOKIE.items() if k != "allergens"}
    page = Page(wallets=[student(None)], credentials=[bracelet(UID, "w1")],
                products=[*PRODUCTS, plain_cookie])
    term = offline_terminal(tmp_path / "t", page)
    assert term.item_refusal("cookie", uid=UID) is None
    assert term.record_sale("cash1", [("cookie", 1)], uid=UID).total == 300


def test_restrictions_lifted_by_the_next_snapshot(tmp_path: Path,
                                                  clock: SettableClock) -> None:
    from .conftest import load_snapshot

    term = till(tmp_path, {"allergens": ["peanut"]}, clock)
    assert term.item_refusal("cookie", uid=UID) is not None
    load_snapshot(term, Page(wallets=[student({})], credentials=[bracelet(UID, "w1")],
                             products=[*PRODUCTS, COOKIE], full=False), clock())
    assert term.item_refusal("cookie", uid=UID) is None
    view = term.wallet_for_uid(UID)
    assert view is not None and not view.restrictions


def test_cli_sell_refuses_restricted_item_exit_4(tmp_path: Path) -> None:
    from shared.clock import utcnow
    from terminal.store import state

    term = till(tmp_path, {"allergens": ["peanut"]})
    state.record_synced(term.db, utcnow())   # the CLI runs on the real clock
    data_dir = term.data_dir
    term.close()
    code, doc = pos_terminal_json(data_dir, "sell", "--cashier", "cash1", "--uid", UID,
                                  "--item", "water", "--item", "cookie")
    assert code == 4
    assert doc == {"refused": "restricted_item",
                   "message": "Peanut Cookie is not allowed for this student: allergy to "
                              "peanut."}
    code, status = pos_terminal_json(data_dir, "status")
    assert status["last_seq"] == 0
