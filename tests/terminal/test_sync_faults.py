"""Sync against the real server under faults: lost responses, an outage, two terminals
spending one wallet offline, a revoked device."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from terminal.core import Terminal
from terminal.errors import SaleRefused
from terminal.store import outbox, snapshot, state

from .cli_run import BIN, ROOT, audit_ledger, pos_terminal_json
from .lossy_proxy import LossyProxy


def enrolled(live_server: Any, path: Path, code: str | None = None,
             url: str | None = None) -> Terminal:
    term = Terminal(path)
    school = live_server.demo["schools"][0]
    result = term.enroll(url or live_server.url, code or school["enrollment_code"], path.name)
    assert result.first_snapshot.completed, result.first_snapshot.error
    return term


def free_wallets(live_server: Any) -> list[dict[str, Any]]:
    school = live_server.demo["schools"][0]
    return [w for w in school["wallets"]
            if w["daily_limit"] is None and w.get("status", "active") == "active"]


def ids(live_server: Any) -> tuple[str, dict[int, str]]:
    school = live_server.demo["schools"][0]
    return (school["cashiers"][0]["cashier_id"],
            {p["price"]: p["product_id"] for p in school["products"]})


def assert_audit_clean(live_server: Any) -> None:
    audit = audit_ledger(live_server.db_url)
    assert audit["ok"] is True, audit
    assert all(not s["missing_seqs"] for s in audit["schools"]), audit


def test_lost_responses_apply_every_sale_exactly_once(live_server, tmp_path: Path) -> None:
    proxy = LossyProxy(live_server.port, drop_ratio=1 / 3, seed=11)
    proxy.dropping = False  # the enrollment answer carries the token: let it through
    term = enrolled(live_server, tmp_path / "lossy", url=proxy.url)
    proxy.dropping = True
    cashier, products = ids(live_server)
    wallets = free_wallets(live_server)
    spent: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for round_ in range(6):
        for i in range(40):
            w = wallets[(round_ * 40 + i) % len(wallets)]
            try:
                r = term.record_sale(cashier, [(products[150], 1)], uid=w["credential_uid"])
            except SaleRefused:
                continue
            spent[w["wallet_id"]] += r.total
        report = term.sync_once()
        totals.update({k: v for k, v in report.counts.items()})
    for _ in range(40):
        report = term.sync_once()
        totals.update(report.counts)
        if report.completed and report.queued == 0:
            break
    assert report.completed and report.queued == 0, report
    assert proxy.dropped >= 3, (proxy.dropped, proxy.forwarded)
    assert totals["duplicate"] >= 1, totals          # some pushes were answered but lost
    assert totals["conflict"] == totals["rejected"] == 0
    recorded = outbox.last_seq(term.db.conn)
    assert sum(spent.values()) == 150 * recorded
    assert all(r.outcome == "applied" and r.acked for r in term.history(limit=10_000))
    assert_audit_clean(live_server)
    for w in wallets:  # the server's balances: each sale posted once, none twice
        row = snapshot.get_wallet(term.db, w["wallet_id"])
        assert row is not None and row.balance == w["balance"] - spent[w["wallet_id"]]
    proxy.close()


def test_two_offline_terminals_overdraw_one_wallet(live_server, tmp_path: Path) -> None:
    a = enrolled(live_server, tmp_path / "a")
    b = enrolled(live_server, tmp_path / "b", code=live_server.enrollment_code())
    cashier, products = ids(live_server)
    w = max(free_wallets(live_server), key=lambda w: w["balance"])
    start = w["balance"]
    live_server.stop()

    def spend_all(term: Terminal) -> int:
        total = 0
        for price in (1500, 150):
            while True:
                try:
                    total += term.record_sale(cashier, [(products[price], 1)],
                                              uid=w["credential_uid"]).total
                except SaleRefused as refused:
                    assert refused.code == "insufficient_balance"
                    break
        return total

    spent_a, spent_b = spend_all(a), spend_all(b)
    assert spent_a + spent_b > start, "both terminals spent the same money offline"
    assert a.balance_estimate(w["wallet_id"]) == start - spent_a >= 0
    live_server.start()

    ra, rb = a.sync_once(), b.sync_once()
    assert ra.completed and rb.completed
    assert ra.counts["applied"] + rb.counts["applied"] == outbox.last_seq(
        a.db.conn) + outbox.last_seq(b.db.conn)
    flags_a = [f for r in a.history(1000) for f in r.flags]
    flags_b = [f for r in b.history(1000) for f in r.flags]
    assert "overdraft" not in flags_a and "overdraft" in flags_b
    a.sync_once()
    truth = start - spent_a - spent_b
    assert truth < 0
    for term in (a, b):
        assert snapshot.get_wallet(term.db, w["wallet_id"]).balance == truth  # type: ignore[union-attr]
        assert term.balance_estimate(w["wallet_id"]) == truth
        try:
            term.record_sale(cashier, [(products[150], 1)], uid=w["credential_uid"])
            raise AssertionError("an overdrawn wallet must be refused")
        except SaleRefused as refused:
            assert refused.code == "insufficient_balance"
    assert_audit_clean(live_server)


def test_server_down_selling_continues_and_next_sync_drains(live_server,
                                                            tmp_path: Path) -> None:
    data_dir = tmp_path / "down"
    school = live_server.demo["schools"][0]
    code, _ = pos_terminal_json(data_dir, "enroll", "--server", live_server.url, "--code",
                                school["enrollment_code"], "--name", "Counter 2")
    assert code == 0
    cashier, products = ids(live_server)
    wallets = free_wallets(live_server)
    live_server.stop()
    code, doc = pos_terminal_json(data_dir, "sync")
    assert code == 3 and doc["queued"] == 0
    queued = []
    for i in range(5):
        code, sale = pos_terminal_json(data_dir, "sell", "--cashier", cashier, "--uid",
                                       wallets[i]["credential_uid"], "--item",
                                       f"{products[300]}:2")
        assert code == 0 and sale["seq"] == i + 1 and sale["total"] == 600
        code, status = pos_terminal_json(data_dir, "status")
        queued.append(status["queued"])
        assert status["server_reachable"] is False
        assert status["queued_total"] == 600 * (i + 1)
    assert queued == [1, 2, 3, 4, 5]
    term = Terminal(data_dir)
    assert all(r.offline for r in term.history())  # recorded while the server was away
    term.close()
    live_server.start()
    code, doc = pos_terminal_json(data_dir, "sync")
    assert code == 0, doc
    assert doc == {"results": {"applied": 5, "duplicate": 0, "conflict": 0, "rejected": 0},
                   "acked_seq": 5, "queued": 0}
    code, status = pos_terminal_json(data_dir, "status")
    assert status["server_reachable"] is True and status["queued"] == 0
    assert status["oldest_unsynced_at"] is None and status["last_sync_at"]
    assert_audit_clean(live_server)


def test_revoked_device_keeps_its_queue_and_stops_selling(live_server, tmp_path: Path) -> None:
    data_dir = tmp_path / "revoked"
    school = live_server.demo["schools"][0]
    code, enrolled_doc = pos_terminal_json(data_dir, "enroll", "--server", live_server.url,
                                           "--code", school["enrollment_code"], "--name", "X")
    assert code == 0
    cashier, products = ids(live_server)
    w = free_wallets(live_server)[0]
    for _ in range(2):
        code, _ = pos_terminal_json(data_dir, "sell", "--cashier", cashier, "--wallet",
                                    w["wallet_id"], "--item", products[150])
        assert code == 0
    done = subprocess.run([str(BIN / "pos-server"), "revoke-device", "--db", live_server.db_url,
                           "--device", enrolled_doc["device_id"]], capture_output=True,
                          text=True, cwd=ROOT, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    term = Terminal(data_dir)
    before = [(r.seq, r.ref, r.outcome, r.acked) for r in term.history()]
    term.close()
    code, doc = pos_terminal_json(data_dir, "sync")
    assert code == 5 and doc["queued"] == 2
    code, status = pos_terminal_json(data_dir, "status")
    assert status["device_revoked"] is True and status["auth_problem"] == "revoked"
    assert status["queued"] == 2
    term = Terminal(data_dir)
    assert [(r.seq, r.ref, r.outcome, r.acked) for r in term.history()] == before
    assert state.get_device(term.db) is not None
    # A revoked terminal stops selling at once: nothing it records could ever be synced.
    for sell in ({"wallet_id": w["wallet_id"]}, {"uid": w["credential_uid"]}):
        with pytest.raises(SaleRefused) as refused:
            term.record_sale(cashier, [(products[150], 1)], **sell)
        assert refused.value.code == "device_revoked"
        assert "revoked by the school office" in refused.value.message
    with pytest.raises(SaleRefused) as refused:
        term.void(before[0][1], cashier)
    assert refused.value.code == "device_revoked"
    assert term.selling_stopped() is not None
    term.close()
    code, doc = pos_terminal_json(data_dir, "sell", "--cashier", cashier, "--wallet",
                                  w["wallet_id"], "--item", products[150])
    assert code == 4 and doc["refused"] == "device_revoked", doc
    assert "Call the school office" in doc["message"]
    code, doc = pos_terminal_json(data_dir, "sync")  # still revoked: still refused by the server
    assert code == 5
    term = Terminal(data_dir)
    assert [(r.seq, r.ref, r.outcome, r.acked) for r in term.history()] == before
    assert term.status()["last_seq"] == 2 and term.status()["queued"] == 2
