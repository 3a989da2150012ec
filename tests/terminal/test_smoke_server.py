"""Enroll and sync against the real server (in-process, real SQLite)."""

from __future__ import annotations

from pathlib import Path

from terminal.core import Terminal


def test_enroll_pulls_snapshot_and_sync_pushes(live_server, tmp_path: Path) -> None:
    term = Terminal(tmp_path / "t")
    school = live_server.demo["schools"][0]
    enrolled = term.enroll(live_server.url, school["enrollment_code"], "Counter 1")
    assert enrolled.school_id == school["school_id"]
    assert enrolled.first_snapshot.completed, enrolled.first_snapshot.error
    w = next(w for w in school["wallets"] if w["daily_limit"] is None and w["status"] == "active")
    cashier = school["cashiers"][0]
    assert term.verify_pin(cashier["cashier_id"], cashier["pin"])
    assert not term.verify_pin(cashier["cashier_id"], "0000x")
    product = school["products"][0]
    receipt = term.record_sale(cashier["cashier_id"], [(product["product_id"], 2)],
                               uid=w["credential_uid"])
    assert receipt.balance_estimate == w["balance"] - 2 * product["price"]
    report = term.sync_once()
    assert report.completed, report.error
    assert report.counts["applied"] == 1 and report.queued == 0
    assert term.balance_estimate(w["wallet_id"]) == w["balance"] - 2 * product["price"]
