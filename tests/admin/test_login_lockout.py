"""The admin login lockout and the login form's signed cookie, on both databases.

Client addresses are told to the real app the way a TLS proxy tells it (``X-Forwarded-For``
from a trusted peer), so one test client can sign in from several addresses. Failures that a
test needs by the hundred (the backstops) are written with ``lockout.record``, the function the
login handler records them with; every limit is then met through the real login form.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import unquote

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from shared.clock import utcnow
from sync_server import secrets as secrets_module
from sync_server.admin import lockout
from sync_server.admin.auth import UNKNOWN_ACCOUNT
from sync_server.app import create_app
from sync_server.config import ServerConfig
from sync_server.keys import signing_key_key
from sync_server.signing import sign
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import audit_log, login_attempts

from .conftest import csrf_of, query

# Documentation addresses (RFC 5737), used only as header values.
HOME, SCHOOL_NET, STRANGER = "192.0.2.10", "198.51.100.20", "203.0.113.30"


async def proxied_client(aiohttp_client: Any, db_url: str) -> Any:
    return await aiohttp_client(create_app(ServerConfig(
        db_url=db_url, secure_cookies=False, trusted_proxies="127.0.0.1")))


async def direct_client(aiohttp_client: Any, db_url: str, **settings: Any) -> Any:
    return await aiohttp_client(create_app(ServerConfig(db_url=db_url, secure_cookies=False,
                                                        **settings)))


async def attempt(client: Any, email: str, password: str, address: str) -> Any:
    """One sign-in through the real form, from ``address``."""
    headers = {"X-Forwarded-For": address}
    page = await client.get("/admin/login", headers=headers)
    return await client.post("/admin/login", allow_redirects=False, headers=headers, data={
        "email": email, "password": password, "csrf_token": csrf_of(await page.text()),
        "next": ""})


async def page_from(client: Any, path: str, address: str) -> str:
    resp = await client.get(path, allow_redirects=False, headers={"X-Forwarded-For": address})
    assert resp.status == 200, (path, resp.status)
    return str(await resp.text())


async def plant_failures(db_url: str, rows: list[tuple[str, str]], ago: timedelta) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            for account, address in rows:
                await lockout.record(conn, account, address, utcnow() - ago, succeeded=False)
    finally:
        await engine.dispose()


async def user_id_of(db_url: str, email: str) -> str:
    from sync_server.storage.schema import admin_users

    rows = await query(db_url, sa.select(admin_users.c.user_id)
                       .where(admin_users.c.email == email))
    return str(rows[0][0])


async def test_five_failures_lock_one_address_out_of_one_account_in_every_process(
        aiohttp_client: Any, db_url: str, demo: dict[str, Any]) -> None:
    admin = demo["schools"][0]["admin"]
    first = await proxied_client(aiohttp_client, db_url)
    second = await proxied_client(aiohttp_client, db_url)  # another worker, same database
    for client in (first, second, first, second, first):
        assert (await attempt(client, admin["email"], "wrong", SCHOOL_NET)).status == 401
    for client in (first, second):  # both processes see all five failures
        locked = await attempt(client, admin["email"], admin["password"], SCHOOL_NET)
        assert locked.status == 429
        assert 800 <= int(locked.headers["Retry-After"]) <= 900
        assert "Too many failed attempts" in await locked.text()
    # The real admin, elsewhere, signs in, and is told what happened meanwhile.
    home = await attempt(second, admin["email"], admin["password"], HOME)
    assert home.status == 303
    told = unquote(home.cookies["pos_flash"].value)
    assert "5 failed sign-in attempts since your last sign-in" in told
    assert f"the last from {SCHOOL_NET}" in told
    # The next sign-in has nothing new to report.
    again = await attempt(first, admin["email"], admin["password"], HOME)
    assert again.status == 303 and "pos_flash" not in again.cookies
    # Other accounts at the locked address are not locked.
    viewer = demo["schools"][0]["viewer"]
    assert (await attempt(first, viewer["email"], viewer["password"], SCHOOL_NET)).status == 303


async def test_the_lock_lasts_fifteen_minutes_from_the_fifth_failure(
        aiohttp_client: Any, db_url: str, demo: dict[str, Any]) -> None:
    admin = demo["schools"][0]["admin"]
    account = await user_id_of(db_url, admin["email"])
    client = await proxied_client(aiohttp_client, db_url)
    await plant_failures(db_url, [(account, STRANGER)] * 5, ago=timedelta(minutes=16))
    assert (await attempt(client, admin["email"], admin["password"], STRANGER)).status == 303
    await plant_failures(db_url, [(account, STRANGER)] * 5, ago=timedelta(minutes=14))
    locked = await attempt(client, admin["email"], admin["password"], STRANGER)
    assert locked.status == 429 and 55 <= int(locked.headers["Retry-After"]) <= 61


async def test_unknown_emails_are_limited_alike_and_never_stored(
        aiohttp_client: Any, db_url: str, demo: dict[str, Any]) -> None:
    """An email naming no account is locked after five failures like a real one (so the
    lockout does not tell which emails exist), and what was typed is stored nowhere."""
    typed = "my-password-typed-in-the-wrong-box"
    client = await proxied_client(aiohttp_client, db_url)
    for _ in range(5):
        assert (await attempt(client, typed, "x", STRANGER)).status == 401
    assert (await attempt(client, typed, "x", STRANGER)).status == 429
    assert (await attempt(client, "other" + typed, "x", STRANGER)).status == 401

    admin = demo["schools"][0]["admin"]
    assert (await attempt(client, admin["email"].upper(), "wrong", STRANGER)).status == 401
    failed = await query(db_url, sa.select(audit_log.c.actor_email, audit_log.c.target_id)
                         .where(audit_log.c.action == "login_failed")
                         .order_by(audit_log.c.audit_id))
    assert [r.actor_email for r in failed] == [UNKNOWN_ACCOUNT] * 6 + [admin["email"]]
    assert failed[-1].target_id == await user_id_of(db_url, admin["email"])
    stored = await query(db_url, sa.select(audit_log).where(audit_log.c.action == "login_failed"))
    stored += await query(db_url, sa.select(login_attempts))
    assert not [row for row in stored if typed in repr(tuple(row))]


async def test_backstops_slow_down_new_addresses_but_not_the_admins_own(
        aiohttp_client: Any, db_url: str, demo: dict[str, Any]) -> None:
    admin, viewer = demo["schools"][0]["admin"], demo["schools"][0]["viewer"]
    account = await user_id_of(db_url, admin["email"])
    client = await proxied_client(aiohttp_client, db_url)
    assert (await attempt(client, admin["email"], admin["password"], HOME)).status == 303

    # Many addresses, one account: four failures each from 13 addresses (52 > 50).
    await plant_failures(db_url, [(account, f"10.0.{i}.1") for i in range(13) for _ in range(4)],
                         ago=timedelta(minutes=1))
    assert (await attempt(client, admin["email"], admin["password"], STRANGER)).status == 429
    assert (await attempt(client, admin["email"], admin["password"], HOME)).status == 303
    assert (await attempt(client, viewer["email"], viewer["password"], STRANGER)).status == 303

    # One address, many accounts (20 emails that name no account).
    await plant_failures(db_url, [(f"anon:{i}", SCHOOL_NET) for i in range(20)],
                         ago=timedelta(minutes=1))
    assert (await attempt(client, viewer["email"], viewer["password"], SCHOOL_NET)).status == 429

    # The whole server: 200 failures from everywhere.
    await plant_failures(db_url, [(f"anon:{i}", f"10.1.{i}.1") for i in range(200)],
                         ago=timedelta(minutes=1))
    platform = demo["platform_admin"]
    assert (await attempt(client, platform["email"], platform["password"], "10.9.9.9")).status \
        == 429
    assert (await attempt(client, admin["email"], admin["password"], HOME)).status == 303


async def test_admins_see_when_and_from_where_sign_ins_failed(
        aiohttp_client: Any, db_url: str, demo: dict[str, Any]) -> None:
    client = await proxied_client(aiohttp_client, db_url)
    school0, school1 = demo["schools"][0], demo["schools"][1]
    for _ in range(2):
        await attempt(client, school0["viewer"]["email"], "wrong", SCHOOL_NET)
    await attempt(client, "ghost@nowhere.example", "wrong", STRANGER)
    signed_in = await attempt(client, school0["admin"]["email"], school0["admin"]["password"],
                              HOME)
    assert signed_in.status == 303
    page = await page_from(client, "/admin/audit", HOME)
    section = page.split('id="failed-sign-ins"')[1].split("</section>")[0]
    assert school0["viewer"]["email"] in section and SCHOOL_NET in section
    assert "<td>2</td>" in section
    assert STRANGER not in section  # no account: a platform admin's business

    other = await proxied_client(aiohttp_client, db_url)
    await attempt(other, school1["admin"]["email"], school1["admin"]["password"], HOME)
    theirs = await page_from(other, "/admin/audit", HOME)
    assert SCHOOL_NET not in theirs.split('id="failed-sign-ins"')[1]  # another school's account


async def test_login_form_cookie_must_be_one_this_server_signed(
        aiohttp_client: Any, db_url: str, demo: dict[str, Any]) -> None:
    admin = demo["schools"][0]["admin"]
    client = await direct_client(aiohttp_client, db_url)
    key = client.server.app[signing_key_key]

    async def post_with(token: str) -> int:
        client.session.cookie_jar.clear()
        resp = await client.post("/admin/login", allow_redirects=False,
                                 headers={"Cookie": f"pos_login_csrf={token}"},
                                 data={"email": admin["email"], "password": admin["password"],
                                       "csrf_token": token, "next": ""})
        return int(resp.status)

    page = await client.get("/admin/login")
    good = csrf_of(await page.text())
    nonce, issued, signature = good.split(".")
    old = str(int(utcnow().timestamp()) - 7200)
    planted = [
        "made-up-value",                                    # the old double submit took this
        f"other{nonce}.{issued}.{signature}",               # changed nonce, old signature
        f"{nonce}.{int(issued) + 1}.{signature}",           # changed time
        f"{nonce}.{old}.{sign(key, 'login-csrf', f'{nonce}.{old}')}",   # signed, too old
        f"{nonce}.{issued}.{sign(b'another key', 'login-csrf', f'{nonce}.{issued}')}",
        f"{nonce}.{issued}.{sign(key, 'login-account', f'{nonce}.{issued}')}",  # other use
    ]
    for token in planted:
        assert await post_with(token) == 403, token
    assert await post_with(good) == 303

    # Every process on the database signs with the same generated key; a configured one wins.
    second = await direct_client(aiohttp_client, db_url)
    assert second.server.app[signing_key_key] == key
    configured = await direct_client(aiohttp_client, db_url, signing_secret="from-the-env")
    assert configured.server.app[signing_key_key] == b"from-the-env"


class RecordingHasher(PasswordHasher):
    """The real argon2 hasher, noting the thread each check ran on."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.threads.append(threading.current_thread().name)
        return super().verify(hash, password)


async def test_password_checks_leave_the_event_loop_free(
        aiohttp_client: Any, db_url: str, demo: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 takes tens of ms by design: on the event loop, each login stalled every push and
    pull of its worker that long (1.6 s at the start of the 500-till fleet run). The check
    runs on the hashing threads, and a wrong password is still refused."""
    hasher = RecordingHasher()
    monkeypatch.setattr(secrets_module, "_hasher", hasher)
    admin = demo["schools"][0]["admin"]
    client = await direct_client(aiohttp_client, db_url)
    loop_thread = threading.current_thread().name

    good, bad = await asyncio.gather(
        attempt(client, admin["email"], admin["password"], HOME),
        attempt(client, admin["email"], admin["password"] + "x", HOME))
    assert (good.status, bad.status) == (303, 401)
    assert len(hasher.threads) == 2
    assert all(name.startswith("argon2") and name != loop_thread for name in hasher.threads)
