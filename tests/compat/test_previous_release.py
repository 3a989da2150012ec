"""A till of the previous release keeps syncing against this server, and this release's till
keeps syncing against a newer one (the spec's compatibility rule, both directions).

1. The v1.0 client: every request built by the pinned v1.0 models (``v1_0_models``), every
   response read by them, against the real app on both databases. Enroll, full snapshot,
   push (a sale by bracelet, one looked up by hand, a void, one of an item this server now
   restricts, which that release cannot know about), replay, empty push, delta snapshot.
   Nothing it sends is refused, every answer parses, and the pushes are applied once.
2. This release's terminal against a server that adds fields it does not know to every object
   of every answer (the real app with one middleware of this test's): it enrolls, sells and
   syncs as against this server.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from shared.ids import new_ref
from tests.compat import v1_0_models as v1
from tests.conftest import DatabaseFactory, LiveServer

API = "/api/v1"


class OldTill:
    """The requests and answers of a v1.0 till, over the test client's real HTTP."""

    def __init__(self, client: Any) -> None:
        self.client, self.token = client, ""

    async def _call(self, method: str, path: str, body: v1.Strict | None = None,
                    params: dict[str, str] | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        resp = await self.client.request(
            method, API + path, params=params or {}, headers=headers,
            data=body.model_dump_json() if body is not None else None)
        return resp.status, await resp.read()

    async def health(self) -> v1.HealthResponse:
        status, raw = await self._call("GET", "/health")
        assert status == 200, raw
        return v1.HealthResponse.model_validate_json(raw)

    async def enroll(self, code: str) -> v1.EnrollResponse:
        status, raw = await self._call("POST", "/devices/enroll",
                                       v1.EnrollRequest(enrollment_code=code, name="Old till"))
        assert status == 201, raw
        answer = v1.EnrollResponse.model_validate_json(raw)
        self.token = answer.device_token
        return answer

    async def snapshot(self, cursor: str | None = None) -> tuple[v1.SnapshotResponse, Any]:
        status, raw = await self._call("GET", "/sync/snapshot",
                                       params={"cursor": cursor} if cursor else None)
        assert status == 200, raw
        return v1.SnapshotResponse.model_validate_json(raw), json.loads(raw)

    async def push(self, sales: list[v1.Sale]) -> v1.SalesPushResponse:
        status, raw = await self._call("POST", "/sync/sales", v1.SalesPush(sales=sales))
        assert status == 200, raw                       # never a 422: the request is v1.0
        return v1.SalesPushResponse.model_validate_json(raw)


def _sale(seq: int, cashier: str, wallet: v1.WalletRow, uid: str | None,
          product: v1.ProductRow, quantity: int = 1) -> v1.Sale:
    return v1.Sale(
        ref=new_ref(), seq=seq, kind="sale", voids=None,
        created_at=datetime.now(UTC) - timedelta(seconds=1), cashier_id=cashier,
        wallet_id=wallet.wallet_id, credential_uid=uid,
        lines=[v1.SaleLine(product_id=product.product_id, name=product.name,
                           quantity=quantity, unit_price=product.price)],
        total=quantity * product.price, offline=True)


async def test_a_v1_0_till_syncs_with_this_server(client: Any, demo: dict[str, Any]) -> None:
    school = demo["schools"][0]
    till = OldTill(client)
    assert (await till.health()).status == "ok"
    enrolled = await till.enroll(school["enrollment_code"])
    assert enrolled.school_id == school["school_id"]

    snap, raw = await till.snapshot()
    assert snap.full and not snap.more
    assert len(snap.wallets) == len(school["wallets"]) and snap.products and snap.cashiers
    # The answer carried v1.1 fields that v1.0 does not know: ignored, not refused.
    assert {"spent_today", "restrictions"} <= set(raw["wallets"][0])
    assert {"allergens", "position"} <= set(raw["products"][0])
    assert not hasattr(snap.wallets[0], "restrictions")

    wallets = {w.wallet_id: w for w in snap.wallets}
    uids = {c.wallet_id: c.uid for c in snap.credentials if c.status == "active"}
    products = {p.name: p for p in snap.products}
    cashier = snap.cashiers[0].cashier_id
    plain = [w for w in school["wallets"] if w["status"] == "active"
             and not any(w["restrictions"].values())]
    first, second = wallets[plain[1]["wallet_id"]], wallets[plain[2]["wallet_id"]]
    no_laban = wallets[next(w["wallet_id"] for w in school["wallets"]
                            if w["restrictions"]["products"])]
    water, laban = products["Water 330ml"], products["Laban"]

    by_bracelet = _sale(1, cashier, first, uids[first.wallet_id], water, 2)
    by_hand = _sale(2, cashier, second, None, water)
    void = v1.Sale(**{**by_hand.model_dump(), "ref": new_ref(), "seq": 3, "kind": "void",
                      "voids": by_hand.ref})
    restricted = _sale(4, cashier, no_laban, uids[no_laban.wallet_id], laban)
    sent = [by_bracelet, by_hand, void, restricted]
    answer = await till.push(sent)
    assert [(r.ref, r.status) for r in answer.results] == [(s.ref, "applied") for s in sent]
    assert (answer.acked_seq, answer.missing_seqs) == (4, [])
    # A flag v1.0 never heard of reaches it as a plain string among the flags.
    assert "restricted_item" in answer.results[3].flags
    assert answer.results[0].balance_after == first.balance - by_bracelet.total

    replay = await till.push(sent)                     # a lost answer: the same push again
    assert [(r.status, r.original_status) for r in replay.results] == [
        ("duplicate", "applied")] * 4
    assert [r.balance_after for r in replay.results] == [r.balance_after
                                                          for r in answer.results]
    assert (await till.push([])).acked_seq == 4

    delta, _ = await till.snapshot(snap.cursor)
    assert not delta.full
    changed = {w.wallet_id: w.balance for w in delta.wallets}
    assert changed[first.wallet_id] == first.balance - by_bracelet.total
    assert changed.get(second.wallet_id, second.balance) == second.balance  # sold, voided
    assert changed[no_laban.wallet_id] == no_laban.balance - laban.price


# ------------------------------------------------------------------ a newer server


FUTURE = {"v9_note": "a field from a later v1.x", "v9_detail": {"nested": [1, "two"]}}


def _grown(value: Any) -> Any:
    """Every object of an answer, at every depth, with fields this release does not know."""
    if isinstance(value, dict):
        return {**{k: _grown(v) for k, v in value.items()}, **FUTURE}
    if isinstance(value, list):
        return [_grown(v) for v in value]
    return value


@web.middleware
async def newer_answers(request: web.Request, handler: Any) -> web.StreamResponse:
    response = await handler(request)
    if (request.path.startswith(API) and isinstance(response, web.Response)
            and response.content_type == "application/json" and response.body):
        assert isinstance(response.body, bytes)
        return web.json_response(_grown(json.loads(response.body)), status=response.status)
    return response


class NewerServer(LiveServer):
    """The real app, answering like a later v1.x: more fields everywhere."""

    def make_app(self) -> Any:
        app = super().make_app()
        app.middlewares.append(newer_answers)     # innermost: it sees the handlers' answers
        return app


@pytest.fixture
def newer_server(sqlite_factory: DatabaseFactory) -> Any:
    server = NewerServer(sqlite_factory.new(), json.loads(json.dumps(sqlite_factory.demo)))
    server.start()
    yield server
    # Its answers break this release's closed document on purpose, and only by the fields
    # added here.
    assert all("v9_" in problem for problem in server.broken), server.broken[:5]
    server.broken.clear()
    server.stop()


def test_this_till_ignores_fields_a_newer_server_adds(newer_server: NewerServer,
                                                      tmp_path: Path) -> None:
    from terminal.core import Terminal

    school = newer_server.demo["schools"][0]
    raw = httpx.get(f"{newer_server.url}{API}/health", timeout=10).json()
    assert raw["v9_note"] and raw["status"] == "ok"          # the answers really grew

    term = Terminal(tmp_path / "till")
    report = term.enroll(newer_server.url, school["enrollment_code"], "Counter 1").first_snapshot
    assert report.completed, report.error
    assert len(term.products()) == len(school["products"])
    wallet = next(w for w in school["wallets"] if w["status"] == "active"
                  and not any(w["restrictions"].values()) and w["daily_limit"] is None)
    water = next(p for p in school["products"] if p["name"] == "Water 330ml")
    receipt = term.record_sale(school["cashiers"][0]["cashier_id"],
                               [(water["product_id"], 2)], uid=wallet["credential_uid"])
    assert receipt.balance_estimate == wallet["balance"] - 2 * water["price"]
    synced = term.sync_once()
    assert synced.completed, synced.error
    assert (synced.counts["applied"], synced.acked_seq) == (1, 1)
    assert term.status()["queued"] == 0
    row = term.history()[0]
    assert (row.outcome, row.balance_after) == ("applied", receipt.balance_estimate)
    view = term.wallet_view(wallet["wallet_id"])
    assert view is not None and view.balance_estimate == receipt.balance_estimate
