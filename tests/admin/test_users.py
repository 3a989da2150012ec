"""Staff accounts: adding users, one-time set-password links, deactivation, own passwords.

Against the real app on SQLite and PostgreSQL (the ``client`` fixture). A second browser is a
second HTTP client with its own cookie jar, so "the deactivated user's open session" is a real
session held by someone else while the admin acts.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from shared.clock import utcnow
from sync_server.keys import config_key
from sync_server.secrets import token_hash
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import admin_sessions, admin_users, audit_log, password_resets

from .conftest import Session, as_role, login, query, scalar

LINK = re.compile(r'href="(?:https?://[^/"]+)?(/admin/password/reset/[A-Za-z0-9_-]{43})"')


@pytest.fixture
async def browser(client: Any) -> AsyncIterator[aiohttp.ClientSession]:
    """Another browser on the same server: its own cookies."""
    async with aiohttp.ClientSession(base_url=str(client.make_url("/")),
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        yield other


def refused(resp: Any) -> bool:
    """The answer's one-shot message is an error (or there is none)."""
    flash = resp.cookies.get("pos_flash")
    return flash is None or flash.value.startswith("err")


async def execute(db_url: str, stmt: Any) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(stmt)
    finally:
        await engine.dispose()


async def user_id(db_url: str, email: str) -> str:
    return str(await scalar(db_url, sa.select(admin_users.c.user_id)
                            .where(admin_users.c.email == email)))


async def add_user(admin: Session, email: str, role: str = "school_manager",
                   language: str = "") -> str:
    """Adds a user through the form; the one-time link's path shown on the answer page."""
    resp = await admin.post("/admin/users", {"email": email, "name": "New Staff",
                                             "role": role, "language": language})
    html = await resp.text()
    assert resp.status == 200, html
    match = LINK.search(html)
    assert match, html
    return match.group(1)


async def set_password(browser: Any, link: str, password: str, again: str | None = None,
                       expect: int = 303) -> Any:
    resp = await browser.post(link, data={"password": password,
                                          "password_again": password if again is None else again},
                              allow_redirects=False)
    assert resp.status == expect, await resp.text()
    return resp


async def test_new_user_sets_a_password_through_the_link_then_signs_in(
        client: Any, demo: dict[str, Any], db_url: str, browser: Any) -> None:
    admin = await as_role(client, demo, "admin")
    link = await add_user(admin, "Cook@School.Example", "school_manager")
    token = link.rsplit("/", 1)[1]
    uid = await user_id(db_url, "cook@school.example")
    twice = await admin.post("/admin/users", {"email": "cook@school.example",
                                              "role": "school_viewer"})
    assert refused(twice)
    # Only the token's hash is stored, and no row or audit text holds the token.
    stored = await query(db_url, sa.select(password_resets.c.token_hash)
                         .where(password_resets.c.user_id == uid))
    assert [r[0] for r in stored] == [token_hash(token)]
    audit = await query(db_url, sa.select(audit_log).where(audit_log.c.target_id == uid))
    assert [r.action for r in audit] == ["user_created"]
    assert token not in repr(audit) and audit[0].after["role"] == "school_manager"
    # No password was given, so none signs in yet.
    await login(browser, "cook@school.example", "x" * 16, expect=401)
    # The link works without a session: a form, then the rules.
    page = await browser.get(link)
    assert page.status == 200 and "cook@school.example" in await page.text()
    await set_password(browser, link, "long enough pass", "long enough pasS", expect=400)
    await set_password(browser, link, "short", expect=400)
    done = await set_password(browser, link, "a new long password")
    assert done.headers["Location"] == "/admin/login"
    # Once: the same link is gone (410) and changes nothing; a made-up one is 404.
    assert (await browser.get(link)).status == 410
    await set_password(browser, link, "another long password", expect=410)
    assert (await browser.get("/admin/password/reset/" + "A" * 43)).status == 404
    manager = await login(browser, "cook@school.example", "a new long password")
    assert (await manager.get("/admin/wallets")).status == 200
    assert (await manager.get("/admin/users")).status == 403  # not an admin
    row = (await query(db_url, sa.select(admin_users).where(admin_users.c.user_id == uid)))[0]
    assert row.password_changed_at is not None and row.role == "school_manager"
    actions = [r[0] for r in await query(db_url, sa.select(audit_log.c.action).where(
        audit_log.c.target_id == uid).order_by(audit_log.c.audit_id))]
    assert actions == ["user_created", "login_failed", "password_set_by_link", "login"]


async def test_deactivation_ends_open_sessions_at_once_and_reactivation_restores(
        client: Any, demo: dict[str, Any], db_url: str, browser: Any) -> None:
    viewer_login = demo["schools"][0]["viewer"]
    viewer = await login(browser, viewer_login["email"], viewer_login["password"])
    assert (await viewer.get("/admin/sales")).status == 200
    vid = await user_id(db_url, viewer_login["email"])
    admin = await as_role(client, demo, "admin")
    resp = await admin.post(f"/admin/users/{vid}/deactivate")
    assert resp.status == 303 and not refused(resp)
    # The viewer's next request is sent to sign in; the rows are gone; signing in fails.
    gone = await viewer.get("/admin/sales")
    assert gone.status == 303 and gone.headers["Location"].startswith("/admin/login")
    assert await scalar(db_url, sa.select(sa.func.count()).select_from(admin_sessions)
                        .where(admin_sessions.c.user_id == vid)) == 0
    await login(browser, viewer_login["email"], viewer_login["password"], expect=401)
    # Deactivating twice is refused; reactivating lets the old password in again.
    again = await admin.post(f"/admin/users/{vid}/deactivate")
    assert refused(again)
    assert (await admin.post(f"/admin/users/{vid}/reactivate")).status == 303
    back = await login(browser, viewer_login["email"], viewer_login["password"])
    assert (await back.get("/admin/sales")).status == 200
    rows = await query(db_url, sa.select(audit_log.c.action, audit_log.c.before,
                                         audit_log.c.after, audit_log.c.actor_email)
                       .where(audit_log.c.target_id == vid,
                              audit_log.c.action.like("user_%"))
                       .order_by(audit_log.c.audit_id))
    assert [(r.action, r.before, r.after) for r in rows] == [
        ("user_deactivated", {"active": True}, {"active": False}),
        ("user_reactivated", {"active": False}, {"active": True})]
    assert rows[0].actor_email == demo["schools"][0]["admin"]["email"]


async def test_an_inactive_users_session_is_refused_even_if_its_row_survives(
        client: Any, demo: dict[str, Any], db_url: str, browser: Any) -> None:
    """What another worker sees when it read the session just before the deactivation: the
    session check itself refuses an inactive user."""
    viewer_login = demo["schools"][0]["viewer"]
    viewer = await login(browser, viewer_login["email"], viewer_login["password"])
    vid = await user_id(db_url, viewer_login["email"])
    await execute(db_url, sa.update(admin_users).where(admin_users.c.user_id == vid)
                  .values(active=False))
    resp = await viewer.get("/admin/sales")
    assert resp.status == 303 and resp.headers["Location"].startswith("/admin/login")


async def test_reset_links_are_single_use_expire_and_void_earlier_ones(
        client: Any, demo: dict[str, Any], db_url: str, browser: Any) -> None:
    viewer_login = demo["schools"][0]["viewer"]
    vid = await user_id(db_url, viewer_login["email"])
    admin = await as_role(client, demo, "admin")

    async def reset() -> str:
        resp = await admin.post(f"/admin/users/{vid}/reset")
        html = await resp.text()
        assert resp.status == 200 and "no mail server" in html, html
        match = LINK.search(html)
        assert match
        return match.group(1)

    first, second = await reset(), await reset()
    assert (await browser.get(first)).status == 410  # voided by the newer link
    await execute(db_url, sa.update(password_resets)
                  .where(password_resets.c.token_hash == token_hash(second.rsplit("/", 1)[1]))
                  .values(expires_at=utcnow() - timedelta(seconds=1)))
    assert (await browser.get(second)).status == 410  # expired
    await set_password(browser, second, "a fresh long password", expect=410)
    # A link that works ends the user's open sessions when used.
    viewer = await login(browser, viewer_login["email"], viewer_login["password"])
    third = await reset()
    await set_password(browser, third, "a fresh long password")
    assert (await viewer.get("/admin/sales")).status == 303
    await login(browser, viewer_login["email"], viewer_login["password"], expect=401)
    await login(browser, viewer_login["email"], "a fresh long password")
    actions = [r[0] for r in await query(db_url, sa.select(audit_log.c.action).where(
        audit_log.c.target_id == vid).order_by(audit_log.c.audit_id))]
    assert actions.count("password_reset_created") == 3
    assert actions.count("password_set_by_link") == 1
    notes = await query(db_url, sa.select(audit_log.c.note).where(audit_log.c.target_id == vid))
    assert not any(third.rsplit("/", 1)[1] in (n[0] or "") for n in notes)


async def test_users_change_their_own_password(client: Any, demo: dict[str, Any],
                                               db_url: str, browser: Any) -> None:
    viewer_login = demo["schools"][0]["viewer"]
    elsewhere = await login(browser, viewer_login["email"], viewer_login["password"])
    me = await as_role(client, demo, "viewer")
    page = await me.page("/admin/account/password")
    assert 'name="current"' in page
    form = {"current": viewer_login["password"], "password": "my own new password",
            "password_again": "my own new password"}
    for wrong in ({"current": "not it"}, {"password_again": "something else"},
                  {"password": "short", "password_again": "short"}):
        resp = await me.post("/admin/account/password", {**form, **wrong})
        assert resp.status == 303 and refused(resp), wrong
    assert (await elsewhere.get("/admin/sales")).status == 200  # nothing changed yet
    resp = await me.post("/admin/account/password", form)
    assert not refused(resp)
    assert (await me.get("/admin/sales")).status == 200  # this session stays
    assert (await elsewhere.get("/admin/sales")).status == 303  # the other one ended
    await login(browser, viewer_login["email"], "my own new password")
    vid = await user_id(db_url, viewer_login["email"])
    actions = [r[0] for r in await query(db_url, sa.select(audit_log.c.action).where(
        audit_log.c.target_id == vid))]
    assert "password_changed" in actions and "password_change_failed" in actions


async def test_escalation_and_self_harm_are_refused(client: Any, demo: dict[str, Any],
                                                    db_url: str) -> None:
    school, other = demo["schools"][0], demo["schools"][1]
    admin = await as_role(client, demo, "admin")
    me = await user_id(db_url, school["admin"]["email"])
    platform = await user_id(db_url, demo["platform_admin"]["email"])
    theirs = await user_id(db_url, other["viewer"]["email"])
    # A school admin cannot make a platform admin, nor see or touch one.
    resp = await admin.post("/admin/users", {"email": "boss@evil.example",
                                             "role": "platform_admin"})
    assert refused(resp)
    assert await user_id(db_url, "boss@evil.example") == "None"
    for target in (platform, theirs):
        assert (await admin.get(f"/admin/users/{target}")).status == 404
        for action, data in (("role", {"role": "school_admin"}), ("deactivate", {}),
                             ("reactivate", {}), ("reset", {})):
            assert (await admin.post(f"/admin/users/{target}/{action}", data)).status == 404
    page = await admin.page("/admin/users")
    assert school["viewer"]["email"] in page and other["viewer"]["email"] not in page
    assert demo["platform_admin"]["email"] not in page
    # Nobody demotes or deactivates themselves.
    for action, data in (("role", {"role": "school_viewer"}), ("deactivate", {})):
        resp = await admin.post(f"/admin/users/{me}/{action}", data)
        assert refused(resp)
    # The school's last active admin stays one, even for the platform admin.
    boss = await as_role(client, demo, "platform")
    for action, data in (("role", {"role": "school_viewer"}), ("deactivate", {})):
        resp = await boss.post(f"/admin/users/{me}/{action}", data)
        assert refused(resp), action
    row = (await query(db_url, sa.select(admin_users).where(admin_users.c.user_id == me)))[0]
    assert row.role == "school_admin" and row.active
    # With a second admin the first may be demoted.
    await add_user(boss, "second@school.example", "school_admin")
    resp = await boss.post(f"/admin/users/{me}/role", {"role": "school_viewer"})
    assert not refused(resp)
    assert await scalar(db_url, sa.select(admin_users.c.role)
                        .where(admin_users.c.user_id == me)) == "school_viewer"
    # The platform admin sees the platform section and adds platform admins there, whom a
    # school admin can neither see nor touch.
    page = await boss.page("/admin/users")
    assert demo["platform_admin"]["email"] in page
    await add_user(boss, "ops2@vendor.example", "platform_admin")
    ops2 = await user_id(db_url, "ops2@vendor.example")
    assert await scalar(db_url, sa.select(admin_users.c.school_id)
                        .where(admin_users.c.user_id == ops2)) is None
    assert "ops2@vendor.example" in await boss.page("/admin/users")
    other_admin = await login(client, other["admin"]["email"], other["admin"]["password"])
    assert (await other_admin.get(f"/admin/users/{ops2}")).status == 404
    assert (await other_admin.post(f"/admin/users/{ops2}/deactivate")).status == 404
    actions = [r[0] for r in await query(db_url, sa.select(audit_log.c.action))]
    assert "user_role_changed" in actions and actions.count("user_created") == 2


async def test_the_link_is_emailed_in_the_users_language_when_smtp_is_set(
        aiohttp_client: Any, server_config: Any, demo: dict[str, Any], db_url: str) -> None:
    from dataclasses import replace

    from sync_server.app import create_app
    from sync_server.storage.schema_people import outbound_emails

    client = await aiohttp_client(create_app(replace(server_config, smtp_host="127.0.0.1")))
    assert client.server.app[config_key].smtp_host
    admin = await as_role(client, demo, "admin")
    link = await add_user(admin, "arabic@school.example", "school_viewer", language="ar")
    mails = await query(db_url, sa.select(outbound_emails))
    assert len(mails) == 1
    mail = mails[0]
    assert mail.kind == "password_reset" and mail.to_address == "arabic@school.example"
    assert mail.language == "ar" and re.search("[\u0600-\u06ff]", mail.subject)
    assert link in mail.body_text


def test_access_logs_never_hold_a_set_password_token() -> None:
    from sync_server.access_log import loggable_target, loggable_url

    token = "Abc_-" + "x" * 38
    for path in (f"/admin/password/reset/{token}", f"/admin/%70assword/reset/{token}?a=1"):
        assert token not in loggable_target(path), path
    assert token not in loggable_url(f"https://pos.example/admin/password/reset/{token}")


async def test_two_admins_deactivating_each_other_at_once_leave_one(
        db_url: str, demo: dict[str, Any]) -> None:
    """The rows are locked before they are counted: the second transaction waits for the
    first and then sees one admin fewer (without the lock, on PostgreSQL both would pass)."""
    import asyncio

    from sync_server import staff
    from sync_server.records import RecordError

    school_id = demo["schools"][0]["school_id"]
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            second = await staff.create_user(conn, email="second@school.example", name="",
                                             role="school_admin", school_id=school_id,
                                             unusable_hash="x")
        first = await user_id(db_url, demo["schools"][0]["admin"]["email"])
        locked = asyncio.Event()
        outcomes: list[str] = []

        async def deactivate(target: str, hold: bool) -> None:
            try:
                async with engine.begin() as conn:
                    user = await staff.get_user(conn, target)
                    assert user is not None
                    await staff.set_active(conn, user, False)
                    if hold:
                        locked.set()
                        await asyncio.sleep(0.3)  # the other one starts meanwhile
                outcomes.append("done")
            except RecordError:
                outcomes.append("refused")

        async def after_lock() -> None:
            await locked.wait()
            await deactivate(first, hold=False)

        await asyncio.gather(deactivate(second.user_id, hold=True), after_lock())
    finally:
        await engine.dispose()
    assert sorted(outcomes) == ["done", "refused"]
    active = await scalar(db_url, sa.select(sa.func.count()).select_from(admin_users).where(
        admin_users.c.school_id == school_id, admin_users.c.role == "school_admin",
        admin_users.c.active))
    assert active == 1


async def test_an_address_trying_made_up_links_waits(client: Any, browser: Any) -> None:
    from sync_server.admin.password_links import UNKNOWN_PER_MINUTE

    for n in range(UNKNOWN_PER_MINUTE):
        assert (await browser.get(f"/admin/password/reset/{n:043d}")).status == 404
    limited = await browser.get("/admin/password/reset/" + "B" * 43)
    assert limited.status == 429
    posted = await browser.post("/admin/password/reset/" + "C" * 43,
                                data={"password": "x" * 20, "password_again": "x" * 20})
    assert posted.status == 429
