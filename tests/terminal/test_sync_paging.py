"""Snapshot paging and server error classes, against a hand-written fake of the *server*
(httpx.MockTransport) driving the real SyncClient and sync cycle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from terminal.errors import SaleRefused
from terminal.store import outbox, snapshot, state
from terminal.sync.backoff import Backoff
from terminal.sync.client import SyncClient
from terminal.sync.cycle import run_cycle

from .conftest import SETTINGS, T0, Page, bracelet, offline_terminal, wallet

UID = "04A1B2C3D4E5F6"


class FakeServer:
    """Pages of a full snapshot chained by cursor, then a delta; pushes acknowledged."""

    def __init__(self) -> None:
        self.cursors: list[str | None] = []
        self.status = 200

    def page(self, cursor: str, full: bool, more: bool, wallets: list[dict[str, Any]]
             ) -> dict[str, Any]:
        return {"cursor": cursor, "full": full, "more": more, "server_time": T0.isoformat(),
                "settings": SETTINGS, "wallets": wallets,
                "credentials": [bracelet(f"04{w['wallet_id'][1:]:0>12}", w["wallet_id"])
                                for w in wallets],
                "products": [], "cashiers": []}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.status != 200:
            body = {"type": "https://pos.example/problems/device-revoked", "title": "revoked",
                    "status": self.status}
            return httpx.Response(self.status, json=body)
        if request.url.path.endswith("/sales"):
            sales = json.loads(request.content)["sales"]
            return httpx.Response(200, json={
                "results": [{"ref": s["ref"], "status": "applied"} for s in sales],
                "acked_seq": max([s["seq"] for s in sales], default=0),
                "missing_seqs": [], "server_time": T0.isoformat()})
        cursor = request.url.params.get("cursor")
        self.cursors.append(cursor)
        cursor = None if cursor == "c1" else cursor  # "c1": the test helper's cursor
        pages = {None: self.page("p1", True, True, [wallet("w1", 100), wallet("w2", 200)]),
                 "p1": self.page("p2", True, True, [wallet("w3", 300)]),
                 "p2": self.page("d1", True, False, [wallet("w4", 400)]),
                 "d1": self.page("d2", False, False, [wallet("w1", 111)])}
        return httpx.Response(200, json=pages[cursor])


def client_for(server: FakeServer) -> SyncClient:
    return SyncClient("http://fake", "tok", transport=httpx.MockTransport(server))


def test_paged_full_snapshot_then_delta(tmp_path: Path, clock) -> None:
    term = offline_terminal(tmp_path, Page(wallets=[wallet("old", 5)]), clock)
    term.db.execute("UPDATE sync_state SET cursor = NULL")  # as if the cursor was too old
    server = FakeServer()
    report = run_cycle(term.db, client_for(server), clock)
    assert report.completed and report.snapshot_pages == 3
    assert server.cursors == [None, "p1", "p2"]
    assert snapshot.counts(term.db)["wallets"] == 4               # "old" dropped by the full
    assert state.get_sync_state(term.db).cursor == "d1"
    report = run_cycle(term.db, client_for(server), clock)
    assert server.cursors[-1] == "d1" and report.snapshot_pages == 1
    assert term.balance_estimate("w1") == 111 and term.balance_estimate("w4") == 400


def test_auth_failure_keeps_queue_and_server_errors_are_unreachable(tmp_path: Path,
                                                                    clock) -> None:
    term = offline_terminal(tmp_path, Page(wallets=[wallet("w1", 5000)],
                                           credentials=[bracelet(UID, "w1")]), clock)
    term.record_sale("cash1", [("water", 1)], uid=UID)
    server = FakeServer()
    server.status = 403
    report = run_cycle(term.db, client_for(server), clock)
    assert report.auth_problem == "revoked" and not report.completed
    assert term.status()["device_revoked"] is True and report.queued == 1
    row = outbox.unacked_batch(term.db.conn, 0, 10)[0]
    assert row.outcome is None and not row.acked
    server.status = 503
    report = run_cycle(term.db, client_for(server), clock)
    assert report.unreachable and report.queued == 1
    server.status = 200
    report = run_cycle(term.db, client_for(server), clock)
    assert report.completed and report.queued == 0
    assert term.status()["device_revoked"] is False


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    import random

    backoff = Backoff(base=1, cap=60, rng=random.Random(3))
    delays = [backoff.next_delay() for _ in range(10)]
    assert all(0 <= d <= min(60, 2 ** i) for i, d in enumerate(delays))
    assert len(set(delays)) == 10                      # jittered, not lock-step
    assert backoff.next_delay(retry_after=30) >= 30
    backoff.reset()
    assert backoff.next_delay() <= 1


def test_sync_worker_reports_and_drains_in_the_background(live_server, tmp_path: Path) -> None:
    import threading

    from terminal.core import Terminal
    from terminal.sync.worker import SyncWorker

    term = Terminal(tmp_path / "w")
    school = live_server.demo["schools"][0]
    assert term.enroll(live_server.url, school["enrollment_code"], "W").first_snapshot.completed
    w = next(w for w in school["wallets"] if w["daily_limit"] is None)
    reports = []
    drained = threading.Event()

    def on_report(report: Any) -> None:
        reports.append(report)
        if report.completed and report.queued == 0 and report.counts["applied"]:
            drained.set()

    worker = SyncWorker(term, interval=60, on_report=on_report)
    worker.start()
    term.record_sale(school["cashiers"][0]["cashier_id"],
                     [(school["products"][0]["product_id"], 1)], uid=w["credential_uid"])
    worker.wake()
    assert drained.wait(30), reports
    worker.stop()
    assert term.status()["queued"] == 0


def test_revoked_stops_selling_through_an_outage_until_the_server_answers(tmp_path: Path,
                                                                           clock) -> None:
    term = offline_terminal(tmp_path, Page(wallets=[wallet("w1", 5000)],
                                           credentials=[bracelet(UID, "w1")]), clock)
    first = term.record_sale("cash1", [("water", 1)], uid=UID)
    server = FakeServer()
    server.status = 401  # unknown token: shown, but not the school's decision to stop selling
    run_cycle(term.db, client_for(server), clock)
    assert term.status()["auth_problem"] == "unauthorized" and term.selling_stopped() is None
    assert term.record_sale("cash1", [("water", 1)], uid=UID).seq == 2
    server.status = 403  # the device-revoked problem type
    run_cycle(term.db, client_for(server), clock)
    server.status = 503  # then the network goes: the revocation is not forgotten
    run_cycle(term.db, client_for(server), clock)
    stopped = term.selling_stopped()
    assert stopped is not None and stopped.code == "device_revoked"
    for attempt in (lambda: term.record_sale("cash1", [("water", 1)], uid=UID),
                    lambda: term.record_sale("cash1", [], uid=UID),  # even an empty cart
                    lambda: term.void(first.ref, "cash1")):
        with pytest.raises(SaleRefused) as refused:
            attempt()
        assert refused.value.code == "device_revoked"
        assert refused.value.message == stopped.message
    assert outbox.last_seq(term.db.conn) == 2
    first_alert = term.alerts()[0]
    assert first_alert.code == "device_revoked" and "selling is stopped" in first_alert.message
    server.status = 200  # an admin re-activated it: the next good answer clears the stop
    term.db.execute("UPDATE sync_state SET cursor = 'd1'")  # a delta keeps the catalogue
    assert run_cycle(term.db, client_for(server), clock).completed
    assert term.selling_stopped() is None
    with pytest.raises(SaleRefused) as refused:  # the delta left w1 with 1.11 SAR: the
        term.record_sale("cash1", [("water", 1)], uid=UID)  # ordinary rules answer again
    assert refused.value.code == "insufficient_balance"
