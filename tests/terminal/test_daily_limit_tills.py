"""A daily limit that holds across tills (spec v1.1 ``spent_today``): two real terminal cores
against one real server in-process, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from terminal.core import Terminal
from terminal.errors import SaleRefused
from tests.conftest import DatabaseFactory, LiveServer

from .cli_run import audit_ledger


@pytest.fixture
def server(db_factory: DatabaseFactory) -> Iterator[LiveServer]:
    live = LiveServer(db_factory.new(), json.loads(json.dumps(db_factory.demo)))
    live.start()
    yield live
    live.stop()


def till(server: LiveServer, path: Path) -> Terminal:
    term = Terminal(path)
    enrolled = term.enroll(server.url, server.enrollment_code(), path.name)
    assert enrolled.first_snapshot.completed, enrolled.first_snapshot.error  # synced once
    return term


def synced(term: Terminal) -> None:
    report = term.sync_once()
    assert report.completed and report.queued == 0, report.error


def spent(term: Terminal, wallet_id: str) -> int:
    view = term.wallet_view(wallet_id)
    assert view is not None
    return view.spent_today


def refused(term: Terminal, cashier: str, item: str, uid: str) -> str:
    with pytest.raises(SaleRefused) as info:
        term.record_sale(cashier, [(item, 1)], uid=uid)
    return info.value.code


def test_two_tills_share_the_daily_limit_and_count_each_sale_once(
        server: LiveServer, tmp_path: Path) -> None:
    if datetime.now(UTC).astimezone(ZoneInfo("Asia/Riyadh")).strftime("%H:%M") >= "23:58":
        pytest.skip("the school day ends within the test (Riyadh midnight)")
    school = server.demo["schools"][0]
    cashier = school["cashiers"][0]["cashier_id"]
    price = {p["price"]: p["product_id"] for p in school["products"]}
    water, juice, wrap = price[150], price[300], price[1200]
    student = next(w for w in school["wallets"] if w["daily_limit"] == 1500
                   and w["status"] == "active" and w["balance"] >= 2000)
    wallet_id, uid = student["wallet_id"], student["credential_uid"]
    a, b = till(server, tmp_path / "till-a"), till(server, tmp_path / "till-b")

    # Till B sells first; its sale has not reached the server when till A sells.
    early = b.record_sale(cashier, [(water, 1)], uid=uid)
    a.record_sale(cashier, [(wrap, 1)], uid=uid)                     # 12.00 of 15.00
    assert (spent(a, wallet_id), spent(b, wallet_id)) == (1200, 150)  # neither knows yet
    synced(a)
    assert spent(a, wallet_id) == 1200           # now in the server's figure: still once

    # B syncs: its own 1.50 goes up and comes back inside spent_today, counted once.
    synced(b)
    assert spent(b, wallet_id) == 1350           # 12.00 (A) + 1.50 (B), not 1.50 twice
    assert refused(b, cashier, juice, uid) == "daily_limit"  # 13.50 + 3.00 > 15.00
    b.record_sale(cashier, [(water, 1)], uid=uid)             # exactly 15.00: accepted
    assert spent(b, wallet_id) == 1500
    assert refused(b, cashier, water, uid) == "daily_limit"
    synced(b)
    assert spent(b, wallet_id) == 1500           # after its own sale came back: still once
    synced(a)
    assert spent(a, wallet_id) == 1500
    assert refused(a, cashier, water, uid) == "daily_limit"

    # A void on B gives the room back at once, and the server's figure agrees after a sync.
    b.void(early.ref, cashier)
    assert spent(b, wallet_id) == 1350
    synced(b)
    assert spent(b, wallet_id) == 1350
    b.record_sale(cashier, [(water, 1)], uid=uid)
    synced(b)
    synced(a)
    assert spent(a, wallet_id) == spent(b, wallet_id) == 1500

    audit = audit_ledger(server.db_url)
    assert audit["ok"] is True, audit
