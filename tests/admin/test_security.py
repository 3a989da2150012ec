"""Roles, school isolation, CSRF, sessions and login limits, against the real app and database.

Each role is tried on each page and each action; each action is also tried with another
school's IDs typed into the URL or the form, and without a CSRF token.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa

from shared.clock import utcnow
from sync_server.keys import config_key
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import (
    admin_users,
    credentials,
    devices,
    password_resets,
    payment_events,
    products,
    wallet_restrictions,
    wallets,
    webhook_deliveries,
    webhook_endpoints,
    webhook_events,
)
from tests.server.helpers import enroll, push, sale

from .conftest import Session, as_role, audit_actions, csrf_of, login, query, scalar
from .test_webhook import deliver, event

PAGES = ["/admin/", "/admin/sales", "/admin/sales.csv", "/admin/exceptions", "/admin/wallets",
         "/admin/roster", "/admin/bracelets", "/admin/devices", "/admin/products",
         "/admin/cashiers", "/admin/payments", "/admin/reports/z.pdf", "/admin/reports",
         "/admin/reports/z", "/admin/reports/z.csv", "/admin/reports/sales",
         "/admin/reports/sales.csv", "/admin/reports/money", "/admin/reports/money.csv",
         "/admin/reports/balances", "/admin/reports/balances.csv", "/admin/reports/negatives",
         "/admin/account/password", "/admin/imports"]
# Pages for admins only (school admin, platform admin): managers and viewers get 403.
ADMIN_PAGES = ["/admin/audit", "/admin/users", "/admin/users/new", "/admin/bracelets/stock",
               "/admin/webhooks", "/admin/webhooks/deliveries", "/admin/wallets/new",
               "/admin/year-end"]
# What a school manager may do besides reading: bracelets given out and handed over.
MANAGER_ACTIONS = ("assign", "deliver", "issue")


@dataclass
class World:
    """IDs of rows in both demo schools, including a device and a synced sale in each."""

    demo: dict[str, Any]
    device: list[str]
    ref: list[str]
    held: list[tuple[str, str, str]]  # (event to credit, event to refund, first's payment)
    users: list[str]  # each school's viewer: the target of the user actions
    hooks: list[tuple[str, str]] = field(default_factory=list)  # (webhook endpoint, delivery)

    def ids(self, i: int) -> dict[str, str]:
        s = self.demo["schools"][i]
        credit, refund, payment = self.held[i]
        return {"wallet": s["wallets"][10]["wallet_id"], "uid": s["wallets"][10]["credential_uid"],
                "product": s["products"][0]["product_id"],
                "cashier": s["cashiers"][1]["cashier_id"], "device": self.device[i],
                "ref": self.ref[i], "held_credit": credit, "held_refund": refund,
                "payment": payment, "user": self.users[i],
                "endpoint": self.hooks[i][0], "delivery": self.hooks[i][1]}


async def make_world(client: Any, demo: dict[str, Any]) -> World:
    """Also two held top-ups per school (above the server's ceiling for one top-up)."""
    devs, refs, held = [], [], []
    for i, school in enumerate(demo["schools"]):
        dev = await enroll(client, school["enrollment_code"])
        one = sale(school, 1, wallet=11)
        await push(client, dev["device_token"], [one])
        devs.append(dev["device_id"])
        refs.append(one["ref"])
        events = []
        for n in (1, 2):
            body = event(school["wallets"][10]["wallet_id"], f"evt_big{n}_{i}",
                         amount=600_000, currency=school["currency"], reference=f"big{n}-{i}")
            resp = await deliver(client, body)
            assert resp.status == 202 and (await resp.json())["reason"] == "amount_above_limit"
            events.append(body["event_id"])
        payment = await scalar_of(client, events[0])
        held.append((events[0], events[1], payment))
    url = client.server.app[config_key].db_url
    users = [str(await scalar(url, sa.select(admin_users.c.user_id).where(
        admin_users.c.email == s["viewer"]["email"]))) for s in demo["schools"]]
    hooks = [await failed_delivery(url, s["school_id"]) for s in demo["schools"]]
    return World(demo, devs, refs, held, users, hooks)


async def failed_delivery(db_url: str, school_id: str) -> tuple[str, str]:
    """A webhook endpoint of the school and a failed delivery to it (to redeliver)."""
    from tests.server.webhook_receiver import add_endpoint

    endpoint_id, _ = await add_endpoint(db_url, school_id, "https://hooks.example.invalid/x")
    delivery_id = f"whd_{endpoint_id[4:]}"
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            now = utcnow()
            await conn.execute(sa.insert(webhook_events).values(
                event_id=f"evt_{endpoint_id[4:]}", school_id=school_id,
                event_type="bracelet.blocked", data={}, created_at=now))
            await conn.execute(sa.insert(webhook_deliveries).values(
                delivery_id=delivery_id, event_id=f"evt_{endpoint_id[4:]}",
                endpoint_id=endpoint_id, school_id=school_id, state="failed", attempts=15,
                created_at=now))
    finally:
        await engine.dispose()
    return endpoint_id, delivery_id


async def scalar_of(client: Any, event_id: str) -> str:
    url = client.server.app[config_key].db_url
    return str(await scalar(url, sa.select(payment_events.c.payment_id)
                            .where(payment_events.c.event_id == event_id)))


Action = tuple[str, Callable[[dict[str, str]], str], Callable[[dict[str, str]], dict[str, str]]]
ACTIONS: list[Action] = [
    ("topup", lambda i: f"/admin/wallets/{i['wallet']}/money",
     lambda i: {"kind": "topup", "amount": "1.00", "reason": "cash at office"}),
    ("freeze", lambda i: f"/admin/wallets/{i['wallet']}/settings",
     lambda i: {"status": "frozen"}),
    ("assign", lambda i: "/admin/bracelets/assign",
     lambda i: {"wallet_id": i["wallet"], "uid": "04AABBCCDDEE01"}),
    ("deliver", lambda i: f"/admin/bracelets/{i['uid']}/deliver", lambda i: {}),
    ("issue", lambda i: "/admin/bracelets/issue",
     lambda i: {"wallet_id": i["wallet"], "uid": "04AABBCCDDEE03", "grade": "",
                "homeroom": ""}),
    ("block", lambda i: f"/admin/bracelets/{i['uid']}/block", lambda i: {}),
    ("replace", lambda i: f"/admin/bracelets/{i['uid']}/replace",
     lambda i: {"new_uid": "04AABBCCDDEE02"}),
    ("retire", lambda i: f"/admin/bracelets/{i['uid']}/retire", lambda i: {}),
    ("revoke", lambda i: f"/admin/devices/{i['device']}/revoke", lambda i: {}),
    ("product", lambda i: f"/admin/products/{i['product']}", lambda i: {"price": "9.99"}),
    ("pin", lambda i: f"/admin/cashiers/{i['cashier']}", lambda i: {"pin": "4321"}),
    ("review", lambda i: f"/admin/exceptions/sales/{i['ref']}/review", lambda i: {"note": "ok"}),
    ("reverse", lambda i: f"/admin/sales/{i['ref']}/reverse", lambda i: {"reason": "refund"}),
    ("credit_held", lambda i: f"/admin/payments/events/{i['held_credit']}/credit",
     lambda i: {"wallet_id": i["wallet"], "reason": "parent confirmed by phone"}),
    ("refund_held", lambda i: f"/admin/payments/events/{i['held_refund']}/refund",
     lambda i: {"reason": "paid twice"}),
    ("restrict", lambda i: f"/admin/wallets/{i['wallet']}/restrictions",
     lambda i: {"allergens": "peanut", "product": i["product"]}),
    ("homeroom", lambda i: f"/admin/wallets/{i['wallet']}/settings",
     lambda i: {"homeroom": "4B"}),
    ("move", lambda i: f"/admin/products/{i['product']}/move", lambda i: {"direction": "down"}),
    ("allergens", lambda i: f"/admin/products/{i['product']}", lambda i: {"allergens": "milk"}),
    ("user_role", lambda i: f"/admin/users/{i['user']}/role",
     lambda i: {"role": "school_manager"}),
    ("user_deactivate", lambda i: f"/admin/users/{i['user']}/deactivate", lambda i: {}),
    ("user_reactivate", lambda i: f"/admin/users/{i['user']}/reactivate", lambda i: {}),
    ("user_reset", lambda i: f"/admin/users/{i['user']}/reset", lambda i: {}),
    ("webhook_edit", lambda i: f"/admin/webhooks/{i['endpoint']}",
     lambda i: {"event_type": "sale.applied", "description": "edited"}),
    ("webhook_off", lambda i: f"/admin/webhooks/{i['endpoint']}/active",
     lambda i: {"active": "0"}),
    ("webhook_rotate", lambda i: f"/admin/webhooks/{i['endpoint']}/rotate", lambda i: {}),
    ("webhook_test", lambda i: f"/admin/webhooks/{i['endpoint']}/test", lambda i: {}),
    ("redeliver", lambda i: f"/admin/webhooks/deliveries/{i['delivery']}/redeliver",
     lambda i: {}),
    ("student_edit", lambda i: f"/admin/wallets/{i['wallet']}/edit",
     lambda i: {"display_name": "Renamed pupil", "grade": "Grade 9",
                "student_status": "active", "parent_phone": "+966 50 000 0000"}),
    # Last: it empties the wallet, blocks its bracelets and makes the student inactive.
    ("year_end", lambda i: "/admin/year-end/apply",
     lambda i: {"run_id": "ye_" + "0" * 32, "wallet": i["wallet"]}),
]
CREATES: list[tuple[str, dict[str, str]]] = [
    ("/admin/products", {"name": "Tea", "category": "Drinks", "price": "2.00"}),
    ("/admin/cashiers", {"name": "New cashier", "pin": "1234"}),
    ("/admin/devices/enrollment-codes", {}),
    ("/admin/bracelets/stock", {"uids": "uid\n04AABBCCDDEE07"}),
    ("/admin/users", {"email": "new.staff@school.example", "role": "school_viewer"}),
    ("/admin/webhooks", {"url": "https://hooks.example.invalid/new",
                         "event_type": "payment.credited"}),
    ("/admin/wallets/new", {"display_name": "New pupil", "student_number": "NEW-1"}),
    ("/admin/year-end/preview", {"grade": "Grade 1"}),
]


async def state(db_url: str, ids: dict[str, str]) -> tuple[Any, ...]:
    """What the actions above would change, to prove a refused action changed nothing."""
    w = await query(db_url, sa.select(wallets.c.balance, wallets.c.status, wallets.c.version)
                    .where(wallets.c.wallet_id == ids["wallet"]))
    c = await query(db_url, sa.select(credentials.c.status, credentials.c.uid)
                    .where(credentials.c.wallet_id == ids["wallet"]))
    d = await scalar(db_url, sa.select(devices.c.status)
                     .where(devices.c.device_id == ids["device"]))
    p = await query(db_url, sa.select(payment_events.c.event_id, payment_events.c.resolution,
                                      payment_events.c.reviewed_at)
                    .where(payment_events.c.event_id.in_([ids["held_credit"],
                                                          ids["held_refund"]]))
                    .order_by(payment_events.c.event_id))
    r = await query(db_url, sa.select(wallet_restrictions.c.kind, wallet_restrictions.c.value)
                    .where(wallet_restrictions.c.wallet_id == ids["wallet"]))
    pr = await query(db_url, sa.select(products.c.position, products.c.allergens,
                                       products.c.version)
                     .where(products.c.product_id == ids["product"]))
    u = await query(db_url, sa.select(admin_users.c.role, admin_users.c.active,
                                      admin_users.c.password_hash,
                                      sa.select(sa.func.count()).where(
                                          password_resets.c.user_id == ids["user"])
                                      .scalar_subquery())
                    .where(admin_users.c.user_id == ids["user"]))
    wh = await query(db_url, sa.select(
        webhook_endpoints.c.secret, webhook_endpoints.c.event_types, webhook_endpoints.c.active,
        webhook_endpoints.c.description, webhook_deliveries.c.state,
        webhook_deliveries.c.attempts, sa.select(sa.func.count()).where(
            webhook_deliveries.c.endpoint_id == ids["endpoint"]).scalar_subquery())
        .join(webhook_deliveries, webhook_deliveries.c.endpoint_id
              == webhook_endpoints.c.endpoint_id)
        .where(webhook_deliveries.c.delivery_id == ids["delivery"]))
    return (tuple(w), tuple(sorted(c)), d, tuple(p), tuple(sorted(r)), tuple(pr), tuple(u),
            tuple(wh))


async def test_viewer_reads_every_page_but_changes_nothing(client: Any, demo: dict[str, Any],
                                                           db_url: str) -> None:
    world = await make_world(client, demo)
    ids = world.ids(0)
    viewer = await as_role(client, demo, "viewer")
    for path in [*PAGES, f"/admin/wallets/{ids['wallet']}", f"/admin/sales/{ids['ref']}",
                 f"/admin/bracelets/{ids['uid']}", f"/admin/payments/{ids['payment']}",
                 f"/admin/wallets/{ids['wallet']}/statement",
                 f"/admin/wallets/{ids['wallet']}/statement.pdf"]:
        assert (await viewer.get(path)).status == 200, path
    for path in ADMIN_PAGES:
        assert (await viewer.get(path)).status == 403, path
    assert (await viewer.get("/admin/schools")).status == 403
    before = await state(db_url, ids)
    for name, path, data in ACTIONS:
        resp = await viewer.post(path(ids), data(ids))
        assert resp.status == 403, name
    for path, data in CREATES:
        assert (await viewer.post(path, data)).status == 403, path
    assert await state(db_url, ids) == before
    # Read-only pages show no action forms at all.
    page = await viewer.page(f"/admin/wallets/{ids['wallet']}")
    # Only the header's forms: the language switch (the viewer's own preference) and log-out.
    assert page.split("<main>")[1].count('method="post"') == 0
    assert page.count('method="post"') == 2
    assert "/money" not in page and "/block" not in page


async def test_manager_reads_every_page_and_only_assigns_bracelets(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    """A school manager reads what a viewer reads (with full UIDs) and, of the actions, only
    assigns bracelets: everything else is 403 and changes nothing."""
    world = await make_world(client, demo)
    ids = world.ids(0)
    manager = await as_role(client, demo, "manager")
    for path in [*PAGES, f"/admin/wallets/{ids['wallet']}", f"/admin/sales/{ids['ref']}",
                 f"/admin/bracelets/{ids['uid']}", f"/admin/payments/{ids['payment']}",
                 f"/admin/wallets/{ids['wallet']}/statement",
                 f"/admin/wallets/{ids['wallet']}/statement.pdf"]:
        assert (await manager.get(path)).status == 200, path
    for path in [*ADMIN_PAGES, f"/admin/users/{ids['user']}", "/admin/schools"]:
        assert (await manager.get(path)).status == 403, path
    assert ids["uid"] in await manager.page(f"/admin/wallets/{ids['wallet']}")
    before = await state(db_url, ids)
    for name, path, data in ACTIONS:
        if name not in MANAGER_ACTIONS:
            assert (await manager.post(path(ids), data(ids))).status == 403, name
    for path, data in CREATES:
        assert (await manager.post(path, data)).status == 403, path
    assert await state(db_url, ids) == before
    assert "bracelet_assigned" not in await audit_actions(db_url)
    name, path, data = next(a for a in ACTIONS if a[0] == "assign")
    resp = await manager.post(path(ids), data(ids))
    assert resp.status == 303 and not resp.cookies["pos_flash"].value.startswith("err")
    assert "bracelet_assigned" in await audit_actions(db_url, demo["schools"][0]["school_id"])
    # Another school's student stays out of reach.
    theirs = world.ids(1)
    resp = await manager.post(path(theirs), {**data(theirs), "uid": "04AABBCCDDEE09"})
    assert resp.status == 404


async def test_viewers_see_bracelet_uids_masked(client: Any, demo: dict[str, Any]) -> None:
    """On the student and sale pages (the bracelet pages have their own test), a viewer sees
    a masked UID and no link made of the full one; admins see it whole."""
    from shared.ids import mask_uid

    world = await make_world(client, demo)
    school = demo["schools"][0]
    wallet = school["wallets"][11]  # the demo sale of make_world was on this student
    viewer = await as_role(client, demo, "viewer")
    for path in (f"/admin/wallets/{wallet['wallet_id']}", f"/admin/sales/{world.ref[0]}"):
        page = await viewer.page(path)
        assert wallet["credential_uid"] not in page, path
        assert mask_uid(wallet["credential_uid"]) in page, path
    admin = await as_role(client, demo, "admin")
    for path in (f"/admin/wallets/{wallet['wallet_id']}", f"/admin/sales/{world.ref[0]}"):
        assert wallet["credential_uid"] in await admin.page(path), path


@pytest.mark.parametrize("role", ["admin", "platform"])
async def test_admin_roles_may_do_every_action_in_their_school(
        client: Any, demo: dict[str, Any], db_url: str, role: str) -> None:
    world = await make_world(client, demo)
    ids = world.ids(0)
    session = await as_role(client, demo, role)
    for path in [*PAGES, *ADMIN_PAGES, f"/admin/wallets/{ids['wallet']}",
                 f"/admin/users/{ids['user']}",
                 f"/admin/payments/{ids['payment']}", f"/admin/wallets/{ids['wallet']}/statement",
                 f"/admin/wallets/{ids['wallet']}/statement.pdf"]:
        assert (await session.get(path)).status == 200, path
    for name, path, data in ACTIONS:
        resp = await session.post(path(ids), data(ids))
        assert resp.status in (200, 303), (name, resp.status, await resp.text())
        assert "pos_flash" not in resp.cookies or not resp.cookies["pos_flash"].value.startswith(
            "err"), (name, resp.cookies["pos_flash"].value)
    for path, data in CREATES:
        assert (await session.post(path, data)).status in (200, 303), path
    actions = await audit_actions(db_url, demo["schools"][0]["school_id"])
    for expected in ("wallet_topup", "wallet_frozen", "bracelet_assigned", "bracelet_blocked",
                     "device_revoked", "product_updated", "cashier_pin_reset", "sale_reviewed",
                     "sale_reversed", "product_created", "cashier_created",
                     "enrollment_code_created", "payment_credited",
                     "payment_refund_requested", "wallet_restrictions_set", "wallet_updated",
                     "products_reordered", "user_role_changed", "user_deactivated",
                     "user_reactivated", "password_reset_created", "user_created",
                     "webhook_endpoint_updated", "webhook_endpoint_deactivated",
                     "webhook_secret_rotated", "webhook_test_sent", "webhook_redelivered",
                     "webhook_endpoint_created", "student_updated", "student_left",
                     "student_created"):
        assert expected in actions, expected


@pytest.mark.parametrize("role", ["admin", "platform"])
async def test_other_schools_ids_are_not_found_and_untouched(
        client: Any, demo: dict[str, Any], db_url: str, role: str) -> None:
    world = await make_world(client, demo)
    theirs = world.ids(1)
    session = await as_role(client, demo, role, school=0)  # platform admin looks at school 0
    for path in (f"/admin/wallets/{theirs['wallet']}", f"/admin/sales/{theirs['ref']}",
                 f"/admin/bracelets/{theirs['uid']}", f"/admin/payments/{theirs['payment']}",
                 f"/admin/wallets/{theirs['wallet']}/statement",
                 f"/admin/wallets/{theirs['wallet']}/statement.pdf",
                 f"/admin/users/{theirs['user']}", f"/admin/webhooks/{theirs['endpoint']}",
                 f"/admin/webhooks/deliveries/{theirs['delivery']}"):
        assert (await session.get(path)).status == 404, path
    csv = await (await session.get(f"/admin/sales.csv?wallet={theirs['wallet']}")).text()
    assert theirs["ref"] not in csv and len(csv.strip().splitlines()) == 1
    listing = await session.page(f"/admin/sales?device={theirs['device']}")
    assert theirs["ref"] not in listing
    before = await state(db_url, theirs)
    for name, path, data in ACTIONS:
        resp = await session.post(path(theirs), data(theirs))
        assert resp.status == 404, (name, resp.status)
    assert await state(db_url, theirs) == before
    assert await audit_actions(db_url, demo["schools"][1]["school_id"]) == []


async def test_school_admin_cannot_pick_another_school(client: Any, demo: dict[str, Any],
                                                       db_url: str) -> None:
    session = await as_role(client, demo, "admin", school=0)
    other = demo["schools"][1]
    resp = await session.post("/admin/schools/select", {"school_id": other["school_id"]})
    assert resp.status == 403
    mine, theirs = demo["schools"][0]["wallets"][1], other["wallets"][1]
    page = await session.page(f"/admin/wallets?q={mine['display_name']}")
    assert mine["wallet_id"] in page
    page = await session.page(f"/admin/wallets?q={theirs['display_name']}")
    assert theirs["wallet_id"] not in page


async def test_posts_without_a_valid_csrf_token_are_refused(client: Any, demo: dict[str, Any],
                                                            db_url: str) -> None:
    world = await make_world(client, demo)
    ids = world.ids(0)
    session = await as_role(client, demo, "admin")
    before = await state(db_url, ids)
    for name, path, data in ACTIONS:
        missing = await session.post(path(ids), data(ids), csrf=False)
        wrong = await session.post(path(ids), {**data(ids), "csrf_token": "x" * 43}, csrf=False)
        assert missing.status == wrong.status == 403, name
    for path, data in CREATES:
        assert (await session.post(path, data, csrf=False)).status == 403
    cross = await session.post(ACTIONS[0][1](ids), ACTIONS[0][2](ids),
                               headers={"Origin": "https://evil.example"})
    assert cross.status == 403
    assert (await session.post("/admin/logout", csrf=False)).status == 403
    assert await state(db_url, ids) == before
    # The login form needs its own token too.
    admin = demo["schools"][0]["admin"]
    resp = await client.post("/admin/login", data={"email": admin["email"],
                                                   "password": admin["password"]},
                             allow_redirects=False)
    assert resp.status == 403


async def test_pages_without_session_redirect_to_login(client: Any, demo: dict[str, Any]) -> None:
    for path in [*PAGES, *ADMIN_PAGES, "/admin/schools"]:
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 303, path
        assert resp.headers["Location"].startswith("/admin/login"), path
    resp = await client.post("/admin/products", data={"name": "x"}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/admin/login")
    page = await client.get("/admin/login")
    assert page.status == 200 and 'name="csrf_token"' in await page.text()


async def test_session_cookie_flags_logout_and_next(client: Any, demo: dict[str, Any],
                                                    db_url: str) -> None:
    admin = demo["schools"][0]["admin"]
    page = await client.get("/admin/login?next=/admin/devices")
    html = await page.text()
    resp = await client.post("/admin/login", allow_redirects=False, data={
        "email": admin["email"].upper(), "password": admin["password"],
        "csrf_token": csrf_of(html), "next": "/admin/devices"})
    assert resp.status == 303 and resp.headers["Location"] == "/admin/devices"
    cookie = next(v for v in resp.headers.getall("Set-Cookie") if v.startswith("pos_admin="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie  # secure_cookies is off in tests (plain HTTP)
    token = cookie.split(";")[0].split("=", 1)[1]
    devices_page = await client.get("/admin/devices", allow_redirects=False)
    assert devices_page.status == 200
    session = Session(client, csrf_of(await devices_page.text()))
    assert (await session.post("/admin/logout")).status == 303
    # The old cookie no longer works: the session row is gone.
    client.session.cookie_jar.update_cookies({"pos_admin": token})
    assert (await client.get("/admin/", allow_redirects=False)).status == 303
    assert "login" in await audit_actions(db_url) and "logout" in await audit_actions(db_url)
    hashes = await query(db_url, sa.select(admin_users.c.password_hash))
    assert all(h[0].startswith("$argon2id$") for h in hashes)


async def test_open_redirect_after_login_is_refused(client: Any, demo: dict[str, Any]) -> None:
    admin = demo["schools"][0]["admin"]
    for target in ("https://evil.example/", "//evil.example/admin/", "/admin/../x"):
        page = await client.get("/admin/login")
        resp = await client.post("/admin/login", allow_redirects=False, data={
            "email": admin["email"], "password": admin["password"],
            "csrf_token": csrf_of(await page.text()), "next": target})
        assert resp.headers["Location"] in ("/admin/", target if target.startswith(
            "/admin/") and "//" not in target else "/admin/")
        assert not resp.headers["Location"].startswith(("http", "//"))


async def test_cookies_are_secure_by_default(aiohttp_client: Any, db_url: str,
                                             demo: dict[str, Any],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Secure unless switched off (the demo and these tests, which speak plain HTTP): by the
    dataclass default and by the settings loader with nothing in the environment."""
    from sync_server.app import create_app
    from sync_server.config import ServerConfig

    monkeypatch.delenv("POS_SECURE_COOKIES", raising=False)
    assert ServerConfig.load(db_url=db_url).secure_cookies is True
    client = await aiohttp_client(create_app(ServerConfig(db_url=db_url)))
    page = await client.get("/admin/login")
    cookie = next(v for v in page.headers.getall("Set-Cookie") if v.startswith("pos_login"))
    assert "Secure" in cookie
    admin = demo["schools"][0]["admin"]
    token = csrf_of(await page.text())  # the client keeps a Secure cookie from plain HTTP
    wrong = await client.post("/admin/login", allow_redirects=False, data={
        "email": admin["email"], "password": "not-it", "csrf_token": token,
        "next": ""}, headers={"Cookie": f"pos_login_csrf={token}"})
    assert wrong.status == 401
    resp = await client.post("/admin/login", allow_redirects=False, data={
        "email": admin["email"], "password": admin["password"], "csrf_token": token,
        "next": ""}, headers={"Cookie": f"pos_login_csrf={token}"})
    session = next(v for v in resp.headers.getall("Set-Cookie") if v.startswith("pos_admin="))
    assert "Secure" in session
    # The notice of that failed attempt (it names an address) travels Secure too.
    notice = next(v for v in resp.headers.getall("Set-Cookie") if v.startswith("pos_flash="))
    assert "Secure" in notice


async def test_failed_logins_are_limited_per_account_and_address_and_audited(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    admin = demo["schools"][0]["admin"]
    for _ in range(5):
        await login(client, admin["email"], "wrong-password", expect=401)
    # Even the right password waits now, for this account from this address.
    limited = await login(client, admin["email"], admin["password"], expect=429)
    assert limited.csrf == ""
    actions = await audit_actions(db_url)
    assert actions.count("login_failed") == 5
    # Another account from the same address is not locked (tests/admin/test_login_lockout.py
    # has the other address, the backstops and two processes).
    viewer = demo["schools"][0]["viewer"]
    await login(client, viewer["email"], viewer["password"])


async def test_security_headers_and_no_cdn(client: Any, demo: dict[str, Any]) -> None:
    session = await as_role(client, demo, "admin")
    resp = await session.get("/admin/")
    html = await resp.text()
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert not re.search(r'(src|href|action)="(https?:)?//', html)  # nothing from elsewhere
    assert "<svg" in html  # the charts are inline SVG
    css = await session.get("/admin/static/admin.css")
    assert css.status == 200 and "font" in await css.text()
