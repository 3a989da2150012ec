"""The payment gateway webhook against the real app and database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from sync_server.api.webhooks import sign
from sync_server.ledger import money_ops
from sync_server.ledger.payments import HOLD_WORDS
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import payment_conflicts, payment_events, wallets
from tests.conftest import WEBHOOK_SECRET
from tests.server.helpers import enroll, snapshot

from .conftest import query, scalar

URL = "/api/v1/webhooks/payments"


def event(wallet_id: str, event_id: str = "evt_1", *, kind: str = "payment.completed",
          amount: int = 5000, currency: str = "SAR", **extra: Any) -> dict[str, Any]:
    return {"event_id": event_id, "event_type": kind, "reference": "pay_ref_1",
            "wallet_id": wallet_id, "amount": amount, "currency": currency,
            "created_at": datetime.now(UTC).isoformat(), **extra}


async def deliver(client: Any, body: dict[str, Any] | bytes, *, secret: str = WEBHOOK_SECRET,
                  ts: int | None = None, signature: str | None = None) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    stamp = str(int(time.time()) if ts is None else ts)
    headers = {"Content-Type": "application/json", "X-Timestamp": stamp,
               "X-Signature": signature or sign(secret, stamp, raw)}
    return await client.post(URL, data=raw, headers=headers)


async def balance(db_url: str, wallet_id: str) -> int:
    return int(await scalar(db_url, sa.select(wallets.c.balance)
                            .where(wallets.c.wallet_id == wallet_id)))


async def test_payment_credits_once_and_reaches_terminals(client: Any, demo: dict[str, Any],
                                                          db_url: str) -> None:
    school = demo["schools"][0]
    wallet = school["wallets"][2]
    device = await enroll(client, school["enrollment_code"])
    first = await snapshot(client, device["device_token"])
    before = await balance(db_url, wallet["wallet_id"])

    body = event(wallet["wallet_id"])
    resp = await deliver(client, body)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["status"] == "credited"
    assert await balance(db_url, wallet["wallet_id"]) == before + 5000

    # The same event again (re-signed, new timestamp, keys reordered): 200, no second credit.
    again = await deliver(client, dict(reversed(list(body.items()))))
    assert again.status == 200
    assert (await again.json())["replay"] is True
    assert await balance(db_url, wallet["wallet_id"]) == before + 5000

    delta = await snapshot(client, device["device_token"], first["cursor"])
    changed = {w["wallet_id"]: w["balance"] for w in delta["wallets"]}
    assert changed[wallet["wallet_id"]] == before + 5000


async def test_reused_event_id_with_other_body_is_409_and_kept(client: Any, demo: dict[str, Any],
                                                              db_url: str) -> None:
    wallet = demo["schools"][0]["wallets"][3]
    before = await balance(db_url, wallet["wallet_id"])
    assert (await deliver(client, event(wallet["wallet_id"], "evt_x"))).status == 200
    changed = await deliver(client, event(wallet["wallet_id"], "evt_x", amount=999_999))
    assert changed.status == 409
    assert changed.content_type == "application/problem+json"
    assert (await changed.json())["type"].endswith("/event-conflict")
    assert await balance(db_url, wallet["wallet_id"]) == before + 5000
    kept = await query(db_url, sa.select(payment_conflicts.c.payload)
                       .where(payment_conflicts.c.event_id == "evt_x"))
    assert len(kept) == 1 and kept[0].payload["amount"] == 999_999


async def test_bad_signature_and_stale_or_future_timestamps_are_401(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    wallet = demo["schools"][0]["wallets"][4]
    before = await balance(db_url, wallet["wallet_id"])
    body = event(wallet["wallet_id"], "evt_sig")
    wrong_key = await deliver(client, body, secret="not-the-secret")
    tampered = await deliver(client, body, signature="sha256=" + "0" * 64)
    missing = await client.post(URL, data=json.dumps(body))
    # 30 s of slack each way: on a loaded machine a second passes between stamping and checking.
    stale = await deliver(client, body, ts=int(time.time()) - 330)
    future = await deliver(client, body, ts=int(time.time()) + 330)
    for resp in (wrong_key, tampered, missing, stale, future):
        assert resp.status == 401, await resp.text()
        assert resp.content_type == "application/problem+json"
    assert (await stale.json())["type"].endswith("/stale-timestamp")
    assert await balance(db_url, wallet["wallet_id"]) == before
    assert await scalar(db_url, sa.select(sa.func.count()).select_from(payment_events)) == 0
    # Just inside the window is fine.
    assert (await deliver(client, body, ts=int(time.time()) - 270)).status == 200


async def test_refund_debits_and_flags_overdraft(client: Any, demo: dict[str, Any],
                                                 db_url: str) -> None:
    """A refund takes back at most what its payment credited, even when the wallet has
    spent it meanwhile: then the balance goes below zero and the event is flagged."""
    school = demo["schools"][0]
    wallet = school["wallets"][5]
    before = await balance(db_url, wallet["wallet_id"])
    assert (await deliver(client, event(wallet["wallet_id"], "evt_c1"))).status == 200
    engine = create_engine(db_url)
    try:  # the parent's 5000 and 4300 more are spent (an adjustment stands in for the sales)
        await money_ops.run(engine.begin, money_ops.MoneyOp(
            school_id=school["school_id"], kind="adjustment", wallet_id=wallet["wallet_id"],
            amount=-(before + 4300), idem_key="test:spent", actor="test"))
    finally:
        await engine.dispose()
    resp = await deliver(client, event(wallet["wallet_id"], "evt_r", kind="refund.completed"))
    assert resp.status == 200
    data = await resp.json()
    assert data["status"] == "debited" and data["flags"] == ["overdraft"]
    assert data["balance_after"] == -4300 == await balance(db_url, wallet["wallet_id"])


async def test_refund_without_credit_is_held_not_debited(client: Any, demo: dict[str, Any],
                                                         db_url: str) -> None:
    wallet = demo["schools"][0]["wallets"][5]
    before = await balance(db_url, wallet["wallet_id"])
    resp = await deliver(client, event(wallet["wallet_id"], "evt_r0", kind="refund.completed"))
    assert resp.status == 202
    assert await resp.json() == {"event_id": "evt_r0", "status": "held_for_review",
                                 "reason": "refund_without_credit", "replay": False,
                                 "detail": HOLD_WORDS["refund_without_credit"]}
    assert await balance(db_url, wallet["wallet_id"]) == before


async def test_failed_payment_recorded_without_money(client: Any, demo: dict[str, Any],
                                                     db_url: str) -> None:
    wallet = demo["schools"][0]["wallets"][6]
    before = await balance(db_url, wallet["wallet_id"])
    resp = await deliver(client, event(wallet["wallet_id"], "evt_f", kind="payment.failed"))
    assert resp.status == 200 and (await resp.json())["status"] == "recorded"
    assert await balance(db_url, wallet["wallet_id"]) == before
    rows = await query(db_url, sa.select(payment_events.c.status, payment_events.c.txn_id)
                       .where(payment_events.c.event_id == "evt_f"))
    assert [(r.status, r.txn_id) for r in rows] == [("recorded", None)]


async def test_unknown_wallet_and_wrong_currency_are_held_and_recorded(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    """v1.1: not 422 (the gateway would retry for days) but 202 held_for_review."""
    wallet = demo["schools"][0]["wallets"][7]
    before = await balance(db_url, wallet["wallet_id"])
    unknown_body = event("wal_nobody", "evt_u", reference="r_u")
    unknown = await deliver(client, unknown_body)
    currency = await deliver(client, event(wallet["wallet_id"], "evt_c", currency="USD",
                                           reference="r_c"))
    empty = await deliver(client, event(wallet["wallet_id"], "evt_e", reference=""))
    for resp, reason in ((unknown, "wallet_unknown"), (currency, "currency_mismatch"),
                         (empty, "empty_reference")):
        assert resp.status == 202
        data = await resp.json()
        assert (data["status"], data["reason"]) == ("held_for_review", reason)
    assert await balance(db_url, wallet["wallet_id"]) == before
    rows = {r.event_id: (r.status, r.code) for r in await query(
        db_url, sa.select(payment_events.c.event_id, payment_events.c.status,
                          payment_events.c.code))}
    assert rows == {"evt_u": ("held", "wallet_unknown"), "evt_c": ("held", "currency_mismatch"),
                    "evt_e": ("held", "empty_reference")}
    # A replay of a held event is held again, and still moves nothing.
    again = await deliver(client, unknown_body)
    assert again.status == 202 and (await again.json())["replay"] is True


async def test_unknown_event_type_is_ignored(client: Any, demo: dict[str, Any],
                                             db_url: str) -> None:
    wallet = demo["schools"][0]["wallets"][8]
    resp = await deliver(client, event(wallet["wallet_id"], "evt_t", kind="payout.created"))
    assert resp.status == 200 and (await resp.json())["status"] == "ignored"
    assert await scalar(db_url, sa.select(sa.func.count()).select_from(payment_events)) == 0


async def test_no_secret_configured_is_503(aiohttp_client: Any, db_url: str,
                                           demo: dict[str, Any]) -> None:
    from sync_server.app import create_app
    from sync_server.config import ServerConfig

    client = await aiohttp_client(create_app(ServerConfig(db_url=db_url)))
    resp = await deliver(client, event(demo["schools"][0]["wallets"][1]["wallet_id"]))
    assert resp.status == 503
    assert resp.content_type == "application/problem+json"
