"""The Payments page and every money form of the console: once, audited, replay-safe.

The real app and database (SQLite and PostgreSQL); events arrive through the signed webhook,
forms are posted the way a browser posts them, including twice (a double click re-sends the
same form, with the same idempotency key drawn into it).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import sqlalchemy as sa

from sync_server.app import create_app
from sync_server.config import ServerConfig
from sync_server.ledger.audit import audit
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import payment_events, payments, postings
from tests.conftest import WEBHOOK_SECRET
from tests.server.helpers import enroll, push, sale

from .conftest import Session, as_role, audit_actions, login, query, scalar
from .test_webhook import balance, deliver, event

KEY = re.compile(r'name="idem_key" value="([^"]+)"')


def form_key(html: str, index: int = 0) -> str:
    return KEY.findall(html)[index]


async def payment_of(db_url: str, event_id: str) -> Any:
    rows = await query(db_url, sa.select(payments).join(
        payment_events, payment_events.c.payment_id == payments.c.payment_id)
        .where(payment_events.c.event_id == event_id))
    return rows[0]


async def audit_ok(db_url: str) -> bool:
    engine = create_engine(db_url)
    try:
        return bool((await audit(engine))["ok"])
    finally:
        await engine.dispose()


def flash(resp: Any) -> str:
    return unquote(resp.cookies["pos_flash"].value) if "pos_flash" in resp.cookies else ""


async def test_a_held_payment_is_credited_once_whatever_is_clicked(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    wallet = school["wallets"][4]["wallet_id"]
    before = await balance(db_url, wallet)
    await deliver(client, event(wallet, "evt_f1", kind="payment.failed", reference="R1"))
    held = await deliver(client, event(wallet, "evt_c1", reference="R1"))
    assert held.status == 202 and (await held.json())["reason"] == "completed_after_failed"
    payment = await payment_of(db_url, "evt_c1")
    assert payment.state == "held"

    admin = await as_role(client, demo, "admin")
    page = await admin.page(f"/admin/payments/{payment.payment_id}")
    assert "evt_f1" in page and "evt_c1" in page and page.index("evt_f1") < page.index("evt_c1")
    form = {"wallet_id": wallet, "reason": "gateway confirmed", "idem_key": form_key(page)}
    url = "/admin/payments/events/evt_c1/credit"
    first = await admin.post(url, form)
    assert first.status == 303 and "credited" in flash(first)
    again = await admin.post(url, form)  # the same form again: a double click
    assert "already credited" in flash(again)
    fresh = await admin.post(url, {**form, "idem_key": "another-key-123"})  # a second tab
    assert "err" in flash(fresh) and "already settled" in flash(fresh)

    assert await balance(db_url, wallet) == before + 5000
    payment = await payment_of(db_url, "evt_c1")
    assert (payment.state, int(payment.credited)) == ("completed", 5000)
    assert (await audit_actions(db_url, school["school_id"])).count("payment_credited") == 1
    assert await audit_ok(db_url)
    # A late completion of the same reference is not credited again.
    late = await deliver(client, event(wallet, "evt_c2", reference="R1"))
    assert (await late.json())["status"] == "recorded"
    assert await balance(db_url, wallet) == before + 5000


async def test_marking_for_refund_moves_no_money_and_happens_once(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    wallet = school["wallets"][5]["wallet_id"]
    before = await balance(db_url, wallet)
    await deliver(client, event(wallet, "evt_big", amount=900_000, reference="R-big"))
    payment = await payment_of(db_url, "evt_big")
    assert (payment.state, payment.hold_reason) == ("held", "amount_above_limit")
    admin = await as_role(client, demo, "admin")
    url = "/admin/payments/events/evt_big/refund"
    assert "Marked for refund" in flash(await admin.post(url, {"reason": "typo by parent"}))
    assert "already marked" in flash(await admin.post(url, {"reason": "again"}))
    credit = await admin.post("/admin/payments/events/evt_big/credit",
                              {"wallet_id": wallet, "reason": "changed my mind"})
    assert "already settled" in flash(credit)
    assert (await payment_of(db_url, "evt_big")).state == "refund_requested"
    assert await balance(db_url, wallet) == before
    actions = await audit_actions(db_url, school["school_id"])
    assert actions.count("payment_refund_requested") == 1
    assert "payment_credited" not in actions


async def test_unknown_wallet_is_settled_by_the_platform_admin_only(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    resp = await deliver(client, event("wal_typo", "evt_u", reference="R-u"))
    assert resp.status == 202
    payment = await payment_of(db_url, "evt_u")
    assert payment.school_id is None

    admin = await as_role(client, demo, "admin")
    assert (await admin.get(f"/admin/payments/{payment.payment_id}")).status == 404
    assert "R-u" not in await admin.page("/admin/payments?unassigned=1")
    target = school["wallets"][6]["wallet_id"]
    refused = await admin.post("/admin/payments/events/evt_u/credit",
                               {"wallet_id": target, "reason": "mine?"})
    assert refused.status == 404

    platform = await as_role(client, demo, "platform")
    assert "R-u" in await platform.page("/admin/payments?unassigned=1")
    before = await balance(db_url, target)
    ok = await platform.post("/admin/payments/events/evt_u/credit",
                             {"wallet_id": target, "reason": "parent sent the wallet ID"})
    assert "credited" in flash(ok)
    assert await balance(db_url, target) == before + 5000
    payment = await payment_of(db_url, "evt_u")
    assert (payment.state, payment.school_id) == ("completed", school["school_id"])
    other = demo["schools"][1]["wallets"][1]["wallet_id"]  # never to another school's wallet
    await deliver(client, event("wal_typo2", "evt_u2", reference="R-u2"))
    wrong = await platform.post("/admin/payments/events/evt_u2/credit",
                                {"wallet_id": other, "reason": "x"})
    assert "err" in flash(wrong)
    assert await audit_ok(db_url)


async def test_payment_list_filters_totals_and_stale_pending(
        aiohttp_client: Any, demo: dict[str, Any], db_url: str) -> None:
    client = await aiohttp_client(create_app(ServerConfig(
        db_url=db_url, webhook_secret=WEBHOOK_SECRET, payment_pending_minutes=0,
        secure_cookies=False)))
    wallet = demo["schools"][0]["wallets"][7]["wallet_id"]
    await deliver(client, event(wallet, "evt_p", kind="payment.pending", reference="R-p",
                                amount=1200))
    await deliver(client, event(wallet, "evt_ok", reference="R-ok", amount=3000))
    await deliver(client, event(wallet, "evt_ok_r", kind="refund.completed", reference="R-ok",
                                amount=1000))
    admin = await as_role(client, demo, "admin")
    everything = await admin.page("/admin/payments")
    assert "R-p" in everything and "R-ok" in everything
    assert "pending too long" in everything and 'class="stale"' in everything
    totals = re.search(r'id="payment-totals">(.*?)</div>\s*</div>\s*<div class="scroll"',
                       everything, re.S)
    assert totals and "42.00" in totals.group(1)  # 12.00 + 30.00 asked
    assert "30.00" in totals.group(1) and "10.00" in totals.group(1)
    pending = await admin.page("/admin/payments?state=pending")
    assert "R-p" in pending and "R-ok" not in pending
    stale = await admin.page("/admin/payments?state=stale")
    assert "R-p" in stale and "R-ok" not in stale
    assert "R-ok" not in await admin.page("/admin/payments?from=2000-01-01&to=2000-01-02")


async def test_money_forms_replay_a_double_submission(client: Any, demo: dict[str, Any],
                                                      db_url: str) -> None:
    school = demo["schools"][0]
    wallet = school["wallets"][8]["wallet_id"]
    admin: Session = await as_role(client, demo, "admin")
    page = await admin.page(f"/admin/wallets/{wallet}")
    before = await balance(db_url, wallet)
    form = {"kind": "topup", "amount": "7.00", "reason": "cash", "idem_key": form_key(page)}
    await admin.post(f"/admin/wallets/{wallet}/money", form)
    second = await admin.post(f"/admin/wallets/{wallet}/money", form)
    assert "already posted" in flash(second)
    reused = await admin.post(f"/admin/wallets/{wallet}/money", {**form, "amount": "9.00"})
    assert "err" in flash(reused)
    assert await balance(db_url, wallet) == before + 700

    token = (await enroll(client, school["enrollment_code"]))["device_token"]
    one = sale(school, 1, wallet=8)
    await push(client, token, [one])
    page = await admin.page(f"/admin/sales/{one['ref']}")
    form = {"reason": "wrong student", "idem_key": form_key(page)}
    await admin.post(f"/admin/sales/{one['ref']}/reverse", form)
    assert "already posted" in flash(await admin.post(f"/admin/sales/{one['ref']}/reverse",
                                                      form))
    refunds = await scalar(db_url, sa.select(sa.func.count()).select_from(postings)
                           .where(postings.c.kind == "reversal",
                                  postings.c.sale_ref == one["ref"]))
    assert refunds == 1
    assert await balance(db_url, wallet) == before + 700
    assert await audit_ok(db_url)


async def test_held_completion_is_settled_not_waved_through(client: Any, demo: dict[str, Any],
                                                            db_url: str) -> None:
    wallet = demo["schools"][0]["wallets"][9]["wallet_id"]
    await deliver(client, event(wallet, "evt_h", reference="", amount=2500))
    admin = await as_role(client, demo, "admin")
    queue = await admin.page("/admin/exceptions")
    assert "evt_h" in queue and "Settle on the payment" in queue
    resp = await admin.post("/admin/exceptions/payments/review",
                            {"event_id": "evt_h", "note": "looks fine"})
    assert resp.status == 404
    assert "evt_h" in await admin.page("/admin/exceptions")
    viewer = await login(client, demo["schools"][0]["viewer"]["email"],
                         demo["schools"][0]["viewer"]["password"])
    payment = await payment_of(db_url, "evt_h")
    page = await viewer.page(f"/admin/payments/{payment.payment_id}")
    assert "credit-form" not in page and "refund-form" not in page
