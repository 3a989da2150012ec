"""The webhooks console against the real app, its delivery job and a real receiver, on both
databases: an endpoint added with its secret shown once, test events, rotation, deactivation
holding deliveries back, redelivery, URL rules, and the audit rows (never the secret)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import sqlalchemy as sa

from sync_server.config import ServerConfig
from sync_server.storage.schema import audit_log, webhook_deliveries, webhook_endpoints
from tests.server.test_outbound_webhooks import fast, states, top_up
from tests.server.webhook_receiver import Receiver, wait_for

from .conftest import as_role, audit_actions, query


@pytest.fixture
def server_config(db_url: str) -> ServerConfig:
    return fast(db_url)


@pytest.fixture
async def receiver() -> Any:
    r = await Receiver().start()
    yield r
    await r.stop()


def secret_in(html: str) -> str:
    found = re.search(r'id="secret-value">([^<]+)<', html)
    assert found, "no secret shown"
    return found.group(1)


async def add(session: Any, url: str, *events: str) -> Any:
    return await session.post("/admin/webhooks", {
        "url": url, "event_type": list(events) or ["payment.credited"],
        "description": "Finance system"})


async def test_add_test_rotate_deactivate_redeliver(client: Any, demo: dict[str, Any],
                                                   db_url: str, receiver: Receiver) -> None:
    school = demo["schools"][0]
    session = await as_role(client, demo, "admin")
    created = await add(session, receiver.url, "payment.credited", "sale.applied")
    assert created.status == 200
    html = await created.text()
    secret = secret_in(html)
    assert secret.startswith("whsec_") and len(secret) > 40
    (endpoint_id, stored, events), = await query(db_url, sa.select(
        webhook_endpoints.c.endpoint_id, webhook_endpoints.c.secret,
        webhook_endpoints.c.event_types))
    assert stored == secret and events == ["payment.credited", "sale.applied"]
    # Shown once: neither its page nor the list shows it again.
    assert secret not in await session.page(f"/admin/webhooks/{endpoint_id}")
    listing = await session.page("/admin/webhooks")
    assert receiver.url in listing and secret not in listing

    # A test event reaches it, signed with that secret.
    sent = await session.post(f"/admin/webhooks/{endpoint_id}/test")
    assert sent.status == 303 and "/admin/webhooks/deliveries/whd_" in sent.headers["Location"]
    await wait_for(db_url, states(), [("delivered", 1)])
    assert receiver.calls[0].json["type"] == "webhook.test"
    assert receiver.calls[0].signed_by(secret)

    # Rotation: the new secret signs what follows.
    rotated = await session.post(f"/admin/webhooks/{endpoint_id}/rotate")
    new_secret = secret_in(await rotated.text())
    assert new_secret != secret
    await top_up(client, school)
    await wait_for(db_url, states("payment.credited"), [("delivered", 1)])
    credited = receiver.of_type("payment.credited")[0]
    assert credited.signed_by(new_secret) and not credited.signed_by(secret)

    # Deactivated: new events are not queued for it, and what was pending waits.
    off = await session.post(f"/admin/webhooks/{endpoint_id}/active", {"active": "0"})
    assert off.status == 303
    await top_up(client, school, 2)
    assert len(await query(db_url, states("payment.credited"))) == 1
    calls = len(receiver.calls)
    await session.post(f"/admin/webhooks/{endpoint_id}/active", {"active": "1"})

    # Redeliver a delivered one: the same event again, a fresh count of tries.
    delivery_id = (await query(db_url, sa.select(webhook_deliveries.c.delivery_id).where(
        webhook_deliveries.c.state == "delivered").limit(1)))[0][0]
    page = await session.page(f"/admin/webhooks/deliveries/{delivery_id}")
    assert 'id="redeliver"' in page and "200" in page
    again = await session.post(f"/admin/webhooks/deliveries/{delivery_id}/redeliver")
    assert again.status == 303
    await wait_for(db_url, sa.select(webhook_deliveries.c.state, webhook_deliveries.c.attempts)
                   .where(webhook_deliveries.c.delivery_id == delivery_id),
                   [("delivered", 1)])
    assert len(receiver.calls) == calls + 1
    assert receiver.calls[-1].headers["X-Event-Id"] == next(
        c.headers["X-Event-Id"] for c in receiver.calls[:-1]
        if c.body == receiver.calls[-1].body)
    page = await session.page(f"/admin/webhooks/deliveries/{delivery_id}")
    assert page.count("<td class=\"num\">200</td>") == 2  # both tries listed
    assert "delivered" in await session.page("/admin/webhooks/deliveries?state=delivered")

    actions = await audit_actions(db_url, school["school_id"])
    for action in ("webhook_endpoint_created", "webhook_test_sent", "webhook_secret_rotated",
                   "webhook_endpoint_deactivated", "webhook_endpoint_activated",
                   "webhook_redelivered"):
        assert action in actions, action
    audit = json.dumps([list(map(str, r)) for r in await query(db_url, sa.select(audit_log))])
    assert secret not in audit and new_secret not in audit


@pytest.mark.parametrize("url", ["http://example.com/hook", "ftp://127.0.0.1/x",
                                 "https://user:pw@example.com/hook", "not a url",
                                 "http://8.8.8.8/hook", "https://example.com:99999/",
                                 "https://169.254.169.254/latest", "https://0.0.0.0/x"])
async def test_bad_urls_are_refused_and_nothing_is_added(client: Any, demo: dict[str, Any],
                                                         db_url: str, url: str) -> None:
    session = await as_role(client, demo, "admin")
    resp = await add(session, url)
    assert resp.status == 303 and resp.cookies["pos_flash"].value.startswith("err")
    assert await query(db_url, sa.select(webhook_endpoints)) == []


async def test_no_events_chosen_is_refused(client: Any, demo: dict[str, Any],
                                           db_url: str) -> None:
    session = await as_role(client, demo, "admin")
    resp = await session.post("/admin/webhooks", {"url": "https://example.com/hook"})
    assert resp.cookies["pos_flash"].value.startswith("err")
    ok = await add(session, "https://hooks.example.com/x?token=abc", "bracelet.blocked")
    assert ok.status == 200
    (after,), = await query(db_url, sa.select(audit_log.c.after).where(
        audit_log.c.action == "webhook_endpoint_created"))
    assert after["url"] == "https://hooks.example.com/x"  # the query (a token) is not kept


async def test_http_endpoints_need_the_setting(aiohttp_client: Any, demo: dict[str, Any],
                                               db_url: str) -> None:
    from sync_server.app import create_app

    client = await aiohttp_client(create_app(fast(db_url, webhooks_allow_http=False)))
    session = await as_role(client, demo, "admin")
    resp = await add(session, "http://127.0.0.1:9/hook")
    assert resp.cookies["pos_flash"].value.startswith("err")
    assert await query(db_url, sa.select(webhook_endpoints)) == []
    assert (await add(session, "https://hooks.example.com/x")).status == 200
    arabic = await session.page("/admin/webhooks?lang=ar")
    assert 'dir="rtl"' in arabic and "إضافة نقطة استقبال" in arabic


@pytest.mark.parametrize("role", ["manager", "viewer"])
async def test_managers_and_viewers_see_no_webhook_page(client: Any, demo: dict[str, Any],
                                                        db_url: str, role: str) -> None:
    admin = await as_role(client, demo, "admin")
    html = await (await add(admin, "https://hooks.example.com/x")).text()
    assert secret_in(html)
    (endpoint_id,), = await query(db_url, sa.select(webhook_endpoints.c.endpoint_id))
    session = await as_role(client, demo, role)
    for path in ("/admin/webhooks", f"/admin/webhooks/{endpoint_id}",
                 "/admin/webhooks/deliveries"):
        assert (await session.get(path)).status == 403, path
    assert "/admin/webhooks" not in await session.page("/admin/")
    for path in (f"/admin/webhooks/{endpoint_id}/rotate", f"/admin/webhooks/{endpoint_id}/test",
                 "/admin/webhooks"):
        assert (await session.post(path, {"url": "https://x.example"})).status == 403, path


async def test_an_admin_crediting_a_held_payment_tells_payment_credited_once(
        client: Any, demo: dict[str, Any], db_url: str, receiver: Receiver) -> None:
    from .test_webhook import deliver, event

    school = demo["schools"][0]
    wallet_id = school["wallets"][3]["wallet_id"]
    session = await as_role(client, demo, "admin")
    html = await (await add(session, receiver.url, "payment.credited")).text()
    secret = secret_in(html)
    body = event(wallet_id, "evt_big", amount=600_000, currency=school["currency"],
                 reference="big-1")
    assert (await deliver(client, body)).status == 202  # above the ceiling: held
    form = {"wallet_id": wallet_id, "reason": "parent confirmed", "idem_key": "k" * 20}
    for _ in range(2):  # the second click replays: nothing more is told
        resp = await session.post("/admin/payments/events/evt_big/credit", form)
        assert resp.status == 303 and not resp.cookies["pos_flash"].value.startswith("err")
    await wait_for(db_url, states("payment.credited"), [("delivered", 1)])
    (call,) = receiver.calls
    assert call.signed_by(secret)
    data = call.json["data"]
    assert data["amount"] == 600_000 and data["wallet_id"] == wallet_id
    assert data["reference"] == "big-1" and data["currency"] == school["currency"]
    assert data["payment_id"].startswith("pay") and isinstance(data["balance_after"], int)
