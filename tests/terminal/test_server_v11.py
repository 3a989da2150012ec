"""The till against the real server (in-process, real SQLite): the v1.1 snapshot brings
grades, homerooms, restrictions, allergens and positions, the till refuses what the school
restricted (then offline too), and every request names the terminal's release."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from terminal.core import Terminal
from terminal.errors import SaleRefused
from terminal.sync.client import USER_AGENT


def enrolled(live_server: Any, tmp_path: Path) -> tuple[Terminal, dict[str, Any]]:
    term = Terminal(tmp_path / "t")
    school = live_server.demo["schools"][0]
    report = term.enroll(live_server.url, school["enrollment_code"], "Counter 1").first_snapshot
    assert report.completed, report.error
    return term, school


def test_snapshot_restrictions_reach_the_till_and_refuse_offline(live_server: Any,
                                                                 tmp_path: Path) -> None:
    term, school = enrolled(live_server, tmp_path)
    cashier = school["cashiers"][0]["cashier_id"]
    products = {p["name"]: p for p in school["products"]}
    allergic = next(w for w in school["wallets"] if w["restrictions"]["allergens"])
    no_laban = next(w for w in school["wallets"] if w["restrictions"]["products"])
    allergen = allergic["restrictions"]["allergens"][0]
    with_it = next(p for p in school["products"] if allergen in p["allergens"])

    view = term.wallet_for_uid(allergic["credential_uid"])
    assert view is not None
    assert (view.grade, view.homeroom) == (allergic["grade"], allergic["homeroom"])
    assert view.restrictions.allergens == (allergen,)

    live_server.stop()                               # the rest happens offline
    problem = term.item_refusal(with_it["product_id"], uid=allergic["credential_uid"])
    assert problem is not None and problem.code == "restricted_item"
    assert problem.message == (f"{with_it['name']} is not allowed for this student: "
                               f"allergy to {allergen}.")
    with pytest.raises(SaleRefused) as caught:
        term.record_sale(cashier, [(products["Laban"]["product_id"], 1)],
                         uid=no_laban["credential_uid"])
    assert caught.value.code == "restricted_item"
    assert caught.value.message == ("Laban is not allowed for this student: the school "
                                    "blocked this item for this student.")
    assert term.status()["queued"] == 0
    water = products["Water 330ml"]["product_id"]
    assert term.record_sale(cashier, [(water, 1)], uid=no_laban["credential_uid"]).total == 150

    listed = term.products()
    assert all(p.position is not None for p in listed)
    assert [p.position for p in listed] == sorted(p.position or 0 for p in listed)
    assert set({p.name: p.allergens for p in listed}[with_it["name"]]) == set(
        with_it["allergens"])


def test_user_agent_names_the_terminal_release(live_server: Any, tmp_path: Path) -> None:
    from importlib.metadata import version

    assert USER_AGENT.startswith(f"cafeteria-pos-terminal/{version('cafeteria-pos')} Python/")
    assert " httpx/" in USER_AGENT
    term, _ = enrolled(live_server, tmp_path)
    device_id = term.status()["device_id"]
    db_path = live_server.db_url.removeprefix("sqlite:///")
    with sqlite3.connect(db_path) as conn:
        seen = conn.execute("SELECT app_version FROM devices WHERE device_id = ?",
                            (device_id,)).fetchone()[0]
    # what the console's devices page shows for this till
    assert seen == USER_AGENT[:100]
    assert "python-httpx" not in seen
