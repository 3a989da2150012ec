"""Parent email end to end against a real SMTP server (aiosmtpd on a local port), on SQLite and
PostgreSQL: the real app pushes real sales, its mail job sends what they queued.

A sale that takes a wallet below the school's threshold sends one email, in Arabic for an
Arabic student and in English for an English one, and emits ``wallet.low_balance``; a second
crossing the same day sends nothing more. With the mail server down the sale is applied at once
and the email is retried (attempts and last error recorded) until the server is up. A sent
password-reset email keeps no body.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import sqlalchemy as sa

from sync_server.config import ServerConfig
from sync_server.mail.queue import enqueue
from sync_server.mail.sender import SENT_BODY
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import outbound_emails, schools, wallets, webhook_events
from tests.conftest import WEBHOOK_SECRET, free_port

from .helpers import enroll, push, sale
from .smtp_server import SmtpServer, body_of


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def server_config(db_url: str, smtp_port: int) -> ServerConfig:
    return ServerConfig(
        db_url=db_url, webhook_secret=WEBHOOK_SECRET, secure_cookies=False,
        smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_tls="none",
        smtp_from="cafeteria@school.test", smtp_timeout_seconds=2.0,
        mail_poll_seconds=0.05, mail_retry_base_seconds=0.2, mail_retry_max_seconds=0.5)


@pytest.fixture
def smtp(smtp_port: int) -> Any:
    server = SmtpServer(smtp_port)
    yield server
    server.stop()


async def run_sql(db_url: str, *statements: Any) -> list[Any]:
    engine = create_engine(db_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            return [await conn.execute(s) for s in statements]
    finally:
        await engine.dispose()


async def read(db_url: str, stmt: Any) -> list[Any]:
    engine = create_engine(db_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(stmt)).all())
    finally:
        await engine.dispose()


async def until(check: Any, seconds: float = 20.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {seconds} s: {value!r}")
        await asyncio.sleep(0.05)


async def parent(db_url: str, school: dict[str, Any], wallet: int, *, email: str,
                 language: str | None) -> int:
    """Give demo wallet ``wallet`` a parent contact and put the school's threshold at its
    balance, so the next sale crosses it; the balance."""
    wallet_id = school["wallets"][wallet]["wallet_id"]
    await run_sql(db_url, sa.update(wallets).where(wallets.c.wallet_id == wallet_id)
                  .values(parent_email=email, language=language))
    balance = int((await read(db_url, sa.select(wallets.c.balance)
                              .where(wallets.c.wallet_id == wallet_id)))[0][0])
    await run_sql(db_url, sa.update(schools).where(schools.c.school_id == school["school_id"])
                  .values(low_balance_threshold=balance))
    return balance


def emails() -> Any:
    return (sa.select(outbound_emails.c.to_address, outbound_emails.c.state,
                      outbound_emails.c.attempts, outbound_emails.c.last_error,
                      outbound_emails.c.language, outbound_emails.c.dedupe_key,
                      outbound_emails.c.body_text)
            .order_by(outbound_emails.c.created_at))


async def test_a_crossing_emails_the_parent_in_the_students_language_once_a_day(
        client: Any, demo: dict[str, Any], db_url: str, smtp: SmtpServer) -> None:
    smtp.start()
    school = demo["schools"][0]
    dev = await enroll(client, school["enrollment_code"])
    token = dev["device_token"]

    await parent(db_url, school, 1, email="umm.ahmad@example.org", language="ar")
    out = await push(client, token, [sale(school, 1, wallet=1)])
    assert [r["status"] for r in out["results"]] == ["applied"]
    await until(lambda: asyncio.sleep(0, len(smtp.messages) == 1))
    arabic = smtp.messages[0]
    assert arabic["To"] == "umm.ahmad@example.org"
    assert arabic["From"] == "cafeteria@school.test"
    assert arabic["Content-Language"] == "ar"
    assert arabic["Message-ID"] and arabic["Date"]
    text = body_of(arabic)
    name = school["wallets"][1]["display_name"]
    assert "ولي الأمر الكريم" in text and name in text and "ر.س." in text
    assert school["name"] in text and school["name"] in arabic["Subject"]

    # The same wallet crossing again today (the threshold raised above it): nothing more.
    await parent(db_url, school, 1, email="umm.ahmad@example.org", language="ar")
    await push(client, token, [sale(school, 2, wallet=1)])

    await parent(db_url, school, 2, email="dad@example.com", language="en")
    await push(client, token, [sale(school, 3, wallet=2)])
    await until(lambda: asyncio.sleep(0, len(smtp.messages) >= 2))
    english = smtp.messages[1]
    assert english["To"] == "dad@example.com"
    text = body_of(english)
    assert "Dear parent" in text and school["wallets"][2]["display_name"] in text
    assert "SAR" in text and "is low" in english["Subject"]

    await asyncio.sleep(0.5)  # a few more polls of the job: still two
    assert len(smtp.messages) == 2
    rows = await read(db_url, emails())
    assert [(r.to_address, r.state, r.attempts, r.language) for r in rows] == [
        ("umm.ahmad@example.org", "sent", 1, "ar"), ("dad@example.com", "sent", 1, "en")]
    assert all(r.dedupe_key.startswith("low_balance:") for r in rows)
    events = await read(db_url, sa.select(webhook_events.c.data, webhook_events.c.dedupe_key)
                        .where(webhook_events.c.event_type == "wallet.low_balance")
                        .order_by(webhook_events.c.created_at))
    assert [e.dedupe_key for e in events] == [r.dedupe_key for r in rows]
    first = events[0].data
    assert first["wallet_id"] == school["wallets"][1]["wallet_id"]
    assert first["currency"] == "SAR" and first["balance"] < first["threshold"]
    assert set(first) == {"wallet_id", "student_number", "balance", "threshold", "currency"}


async def test_no_crossing_no_mail_and_inactive_students_are_not_written_about(
        client: Any, demo: dict[str, Any], db_url: str, smtp: SmtpServer) -> None:
    smtp.start()
    school = demo["schools"][0]
    token = (await enroll(client, school["enrollment_code"]))["device_token"]
    balance = await parent(db_url, school, 1, email="p@example.org", language="en")
    # Threshold far below the balance: a sale does not cross it.
    await run_sql(db_url, sa.update(schools).where(schools.c.school_id == school["school_id"])
                  .values(low_balance_threshold=max(balance // 10, 1)))
    await push(client, token, [sale(school, 1, wallet=1)])
    # A student who left: crossing, but no email nor event.
    await parent(db_url, school, 2, email="q@example.org", language="en")
    await run_sql(db_url, sa.update(wallets)
                  .where(wallets.c.wallet_id == school["wallets"][2]["wallet_id"])
                  .values(student_status="inactive"))
    await push(client, token, [sale(school, 2, wallet=2)])
    await asyncio.sleep(0.3)
    assert await read(db_url, emails()) == []
    assert smtp.messages == []


async def test_smtp_down_never_blocks_a_sale_and_the_email_follows_when_it_is_up(
        client: Any, demo: dict[str, Any], db_url: str, smtp: SmtpServer) -> None:
    school = demo["schools"][0]
    token = (await enroll(client, school["enrollment_code"]))["device_token"]
    await parent(db_url, school, 1, email="umm.ahmad@example.org", language="ar")

    started = time.monotonic()
    out = await push(client, token, [sale(school, 1, wallet=1)])
    assert [r["status"] for r in out["results"]] == ["applied"]
    assert time.monotonic() - started < 10  # not blocked (nothing listens on the port)

    async def tried_twice() -> list[Any]:
        rows = await read(db_url, emails())
        return rows if rows and rows[0].attempts >= 2 else []

    rows = await until(tried_twice)
    assert rows[0].state == "pending" and rows[0].last_error  # refused, recorded, retried

    smtp.start()

    async def sent() -> list[Any]:
        rows = await read(db_url, emails())
        return rows if rows[0].state == "sent" else []

    rows = await until(sent)
    assert rows[0].attempts >= 3 and rows[0].last_error is None
    assert len(smtp.messages) == 1 and "ولي الأمر" in body_of(smtp.messages[0])
    scraped = await (await client.get("/metrics")).text()
    for outcome in ("retry", "sent"):
        assert f'pos_outbound_email_tries_total{{kind="low_balance",outcome="{outcome}"}}' \
            in scraped


async def test_a_sent_password_reset_keeps_no_link(
        client: Any, db_url: str, smtp: SmtpServer) -> None:
    smtp.start()
    link = "https://pos.school.test/admin/password/reset/secret-token-123"
    engine = create_engine(db_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await enqueue(conn, school_id=None, kind="password_reset",
                          to_address="staff@school.test", subject="Set your password",
                          body_text=f"Open {link} within an hour.", language="en")
    finally:
        await engine.dispose()
    await until(lambda: asyncio.sleep(0, len(smtp.messages) == 1))
    assert link in body_of(smtp.messages[0])

    async def cleared() -> list[Any]:
        rows = await read(db_url, emails())
        return rows if rows[0].state == "sent" else []

    rows = await until(cleared)
    assert rows[0].body_text == SENT_BODY


async def test_an_admins_debit_adjustment_that_crosses_tells_the_parent(
        client: Any, demo: dict[str, Any], db_url: str, smtp: SmtpServer) -> None:
    from tests.admin.conftest import as_role

    smtp.start()
    school = demo["schools"][0]
    wallet_id = school["wallets"][1]["wallet_id"]
    await parent(db_url, school, 1, email="umm.ahmad@example.org", language="en")
    admin = await as_role(client, demo, "admin")
    credit = await admin.post(f"/admin/wallets/{wallet_id}/money",
                              {"kind": "adjustment", "amount": "0.50", "reason": "correction"})
    assert credit.status == 303
    assert await read(db_url, emails()) == []  # a credit never tells
    debit = await admin.post(f"/admin/wallets/{wallet_id}/money",
                             {"kind": "adjustment", "amount": "-1.00", "reason": "correction"})
    assert debit.status == 303
    await until(lambda: asyncio.sleep(0, len(smtp.messages) == 1))
    assert "Dear parent" in body_of(smtp.messages[0])
    events = await read(db_url, sa.select(webhook_events.c.event_type)
                        .where(webhook_events.c.event_type == "wallet.low_balance"))
    assert len(events) == 1


async def test_two_senders_on_one_database_send_each_email_once(
        db_url: str, smtp: SmtpServer, smtp_port: int) -> None:
    """Two processes' jobs at once (two engines, as two hosts would have): every email is
    claimed by exactly one of them."""
    from sync_server.mail.sender import MailServer, Sender
    from sync_server.notify.delivery import Schedule

    smtp.start()
    setup = create_engine(db_url, pool_size=1)
    try:
        async with setup.begin() as conn:
            for n in range(12):
                await enqueue(conn, school_id=None, kind="low_balance",
                              to_address=f"parent{n}@example.org", subject=f"n{n}",
                              body_text="low", language="en", dedupe_key=f"t:{n}")
    finally:
        await setup.dispose()
    server = MailServer(host="127.0.0.1", port=smtp_port, tls="none", timeout=5.0,
                        sender="cafeteria@school.test")
    engines = [create_engine(db_url, pool_size=2) for _ in range(2)]
    try:
        jobs = [Sender(e.begin, e.connect, server, Schedule(max_attempts=3), parallel=3)
                for e in engines]
        tried = await asyncio.gather(*(job.run_once() for job in jobs))
    finally:
        for e in engines:
            await e.dispose()
    assert sum(tried) == 12
    assert sorted(m["Subject"] for m in smtp.messages) == sorted(f"n{n}" for n in range(12))
    rows = await read(db_url, emails())
    assert {(r.state, r.attempts) for r in rows} == {("sent", 1)}


async def test_a_password_reset_given_up_on_keeps_no_link(db_url: str, smtp_port: int) -> None:
    """Nothing listens on the port: after the last try the row is failed and the link gone."""
    from sync_server.mail.sender import FAILED_BODY, MailServer, Sender
    from sync_server.notify.delivery import Schedule

    engine = create_engine(db_url, pool_size=2)
    try:
        async with engine.begin() as conn:
            await enqueue(conn, school_id=None, kind="password_reset",
                          to_address="staff@school.test", subject="Set your password",
                          body_text="Open https://pos.school.test/admin/password/reset/tok",
                          language="en")
        job = Sender(engine.begin, engine.connect,
                     MailServer(host="127.0.0.1", port=smtp_port, tls="none", timeout=2.0),
                     Schedule(max_attempts=1))
        assert await job.run_once() == 1
    finally:
        await engine.dispose()
    rows = await read(db_url, emails())
    assert [(r.state, r.attempts, r.body_text) for r in rows] == [("failed", 1, FAILED_BODY)]
    assert rows[0].last_error


async def test_a_wallet_without_a_parent_email_still_emits_the_event(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][1]
    token = (await enroll(client, school["enrollment_code"]))["device_token"]
    await parent(db_url, school, 1, email="x@example.org", language=None)
    await run_sql(db_url, sa.update(wallets)
                  .where(wallets.c.wallet_id == school["wallets"][1]["wallet_id"])
                  .values(parent_email=None))
    await push(client, token, [sale(school, 1, wallet=1)])
    assert await read(db_url, emails()) == []
    events = await read(db_url, sa.select(webhook_events.c.school_id)
                        .where(webhook_events.c.event_type == "wallet.low_balance"))
    assert [e.school_id for e in events] == [school["school_id"]]
