"""Secrets and personal data stay out of logs and files (issue 11).

Database errors without bound values, request lines with UIDs masked and query values dropped
(in-process and from a real ``pos-server serve``, one and two workers), a private SQLite
file, CSV cells no spreadsheet runs as a formula, device names cleaned at enrollment. Against
the real app and real databases (both kinds where a database is involved).
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa

from shared.clock import utcnow
from shared.ids import mask_uid
from sync_server.access_log import loggable_target
from sync_server.admin.csv_cells import safe_cell
from sync_server.storage.engine import create_engine
from sync_server.storage.migrate import upgrade
from sync_server.storage.schema import cashiers, credentials, devices, wallets
from tests.admin.conftest import as_role, query
from tests.conftest import free_port

from .helpers import enroll, push, sale

PIN_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2VjcmV0c2FsdA$PINHASHTHATMUSTNOTBELOGGED"
UID = "04A1B2C3D4E580"


# ------------------------------------------------------------------ database errors


async def test_database_errors_carry_no_bound_values(db_url: str, demo: dict[str, Any],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """A failed statement's message, logged with its traceback as the server does, and the
    engine's own statement log name no PIN hash and no UID."""
    school = demo["schools"][0]
    statements = [
        sa.insert(cashiers).values(  # the demo cashier's ID again: primary key violation
            cashier_id=school["cashiers"][0]["cashier_id"], school_id=school["school_id"],
            name="copy", pin_hash=PIN_HASH, active=True, created_at=utcnow()),
        sa.insert(credentials).values(  # no such wallet: foreign key violation
            school_id=school["school_id"], uid=UID, wallet_id="wal_nowhere", status="active",
            assigned_at=utcnow()),
    ]
    engine = create_engine(db_url)
    log = logging.getLogger("sync_server.api.problems")
    try:
        with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"):
            for stmt in statements:
                with pytest.raises(sa.exc.IntegrityError) as failed:
                    async with engine.begin() as conn:
                        await conn.execute(stmt)
                log.error("unhandled error", exc_info=failed.value)
                assert "parameters hidden" in str(failed.value)
    finally:
        await engine.dispose()
    assert "INSERT INTO" in caplog.text  # the engine did log the statements
    assert PIN_HASH not in caplog.text and "PINHASH" not in caplog.text
    assert UID not in caplog.text


# ------------------------------------------------------------------ request lines


def test_loggable_target_masks_uids_and_drops_query_values() -> None:
    masked = mask_uid(UID)
    cases = {
        f"/admin/bracelets/{UID}": f"/admin/bracelets/{masked}",
        f"/admin/bracelets/{UID.lower()}/block": f"/admin/bracelets/{masked}/block",
        f"/admin/bracelets/{quote(UID[:2])}%{ord(UID[2]):02X}{UID[3:]}":
            f"/admin/bracelets/{masked}",
        "/admin/bracelets/04:a1:b2:c3:d4:e5:80": f"/admin/bracelets/{masked}",
        "/admin/wallets?q=Sara%20Ali&page=2": "/admin/wallets?q=…&page=2",
        f"/admin/login?next=%2Fadmin%2Fbracelets%2F{UID}": "/admin/login?next=…",
        "/admin/sales?status=applied&wallet=wal_1&from=2026-11-01":
            "/admin/sales?status=applied&wallet=…&from=2026-11-01",
        "/admin/sales/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b":
            "/admin/sales/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",  # a sale ref is no UID
        "/api/v1/sync/snapshot?cursor=eyJ2IjoxfQ": "/api/v1/sync/snapshot?cursor=…",
    }
    for raw, logged in cases.items():
        assert loggable_target(raw) == logged, raw


async def test_access_log_of_the_app_masks_uids_and_search_terms(
        client: Any, demo: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    school = demo["schools"][0]
    wallet = school["wallets"][3]
    uid, name = wallet["credential_uid"], wallet["display_name"]
    # Before the first connection: aiohttp decides per connection whether to log.
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    session = await as_role(client, demo, "admin")
    for path in (f"/admin/bracelets/{uid}", f"/admin/bracelets/{uid.lower()}",
                 f"/admin/wallets?q={quote(name)}", f"/admin/bracelets?q={uid}"):
        resp = await session.get(path, headers={
            "Referer": f"http://shop.example/admin/bracelets/{uid}?q={quote(name)}"})
        assert resp.status == 200, path
    await client.get(f"/admin/login?next=/admin/bracelets/{uid}")
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len([line for line in lines if "bracelets" in line]) == 4
    text = "\n".join(lines)
    assert uid not in text and uid.lower() not in text
    assert name not in text and quote(name) not in text
    assert f"/admin/bracelets/{mask_uid(uid)}" in text and "q=…" in text


def _serve(db_url: str, log_path: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    out = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sync_server", "serve", "--db", db_url, "--port", str(port),
         "--workers", str(workers)], stdout=out, stderr=subprocess.STDOUT,
        env={**os.environ, "POS_SECURE_COOKIES": "false"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    proc.wait(10)
    raise AssertionError(f"server did not start: {log_path.read_text()[-2000:]}")


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_logs_requests_with_uids_masked(sqlite_factory: Any, tmp_path: Path,
                                              workers: int) -> None:
    """The real command, with aiohttp's runner (one worker) and gunicorn's (two)."""
    uid = sqlite_factory.demo["schools"][0]["wallets"][3]["credential_uid"]
    log_path = tmp_path / "server.log"
    proc, url = _serve(sqlite_factory.new(), log_path, workers)
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            assert http.get(f"/admin/bracelets/{uid}").status_code == 303  # to the login page
            http.get("/admin/wallets", params={"q": "Sara Private"})
    finally:
        proc.terminate()
        proc.wait(30)
    logged = log_path.read_text()
    assert f"GET /admin/bracelets/{mask_uid(uid)} HTTP/1.1" in logged
    assert "GET /admin/wallets?q=… HTTP/1.1" in logged
    assert uid not in logged and "Sara" not in logged


# ------------------------------------------------------------------ the SQLite file


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_sqlite_database_and_its_wal_are_created_0600(tmp_path: Path) -> None:
    path = tmp_path / "pos-server.db"
    old_umask = os.umask(0o022)
    try:
        asyncio.run(upgrade(f"sqlite:///{path}"))

        async def write_and_keep_open() -> dict[str, int]:
            engine = create_engine(f"sqlite:///{path}")
            try:
                async with engine.begin() as conn:
                    await conn.execute(sa.text("CREATE TABLE scratch (x INTEGER)"))
                async with engine.connect() as conn:  # WAL and shm exist while it is open
                    await conn.execute(sa.text("SELECT count(*) FROM scratch"))
                    return {name: _mode(tmp_path / name) for name in os.listdir(tmp_path)}
            finally:
                await engine.dispose()

        modes = asyncio.run(write_and_keep_open())
    finally:
        os.umask(old_umask)
    assert set(modes) >= {"pos-server.db", "pos-server.db-wal", "pos-server.db-shm"}
    assert all(mode == 0o600 for name, mode in modes.items() if name.startswith("pos-server"))


def test_a_readable_database_file_is_tightened_when_opened(sqlite_factory: Any) -> None:
    url = sqlite_factory.new()  # a copy, made with the umask's mode
    path = Path(sa.make_url(url).database or "")
    path.chmod(0o644)
    engine = create_engine(url)
    asyncio.run(engine.dispose())
    assert _mode(path) == 0o600


# ------------------------------------------------------------------ CSV cells

FORMULA_CASES = {
    '=HYPERLINK("http://x","y")': '\'=HYPERLINK("http://x","y")',
    "  =1+1": "'  =1+1",
    "\u3000=1+1": "'\u3000=1+1",                 # ideographic space
    "\u200b=1+1": "'\u200b=1+1",                 # zero-width space
    "\ufeff@SUM(A1)": "'\ufeff@SUM(A1)",         # byte-order mark
    "＝1+1": "'＝1+1",                           # full-width forms
    "＋1": "'＋1",
    "－1": "'－1",
    "＠SUM(A1)": "'＠SUM(A1)",
    "﹦1": "'﹦1",                               # small equals sign
    "−5+1": "'−5+1",                             # minus sign
    "+966 50": "'+966 50",
    "-2+3": "'-2+3",
    "@cmd": "'@cmd",
    "\t=1": "'\t'=1",
    "\r=1": "'\r'=1",
    "Sara;=cmd|' /C calc'!A0": "Sara;'=cmd|' /C calc'!A0",
    "Sara; -2+3": "Sara;' -2+3",
    "Sara;;＝1": "Sara;;'＝1",
    "Sara\n=1+1": "Sara\n'=1+1",
    "Sara\r\n@SUM(1)": "Sara\r\n'@SUM(1)",
    "Sara\t+1": "Sara\t'+1",
}
PLAIN_CASES = ["Sara Ali", "Lunch - large", "Juice; small", "سارة علي", "", "-12.50", "150",
               "2026-11-22T10:00:00+03:00", "a=b", "x@example.com"]


def test_csv_cells_never_start_a_formula() -> None:
    for raw, cell in FORMULA_CASES.items():
        assert safe_cell(raw) == cell, raw
    for raw in PLAIN_CASES:
        assert safe_cell(raw) == raw, raw
    assert safe_cell(None) == "" and safe_cell(-1250) == -1250


async def test_sales_export_neutralises_names_from_the_roster_and_terminals(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    names = list(FORMULA_CASES)[:12]
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            for i, name in enumerate(names):
                await conn.execute(sa.update(wallets).values(display_name=name).where(
                    wallets.c.wallet_id == school["wallets"][i + 1]["wallet_id"]))
    finally:
        await engine.dispose()
    device = await enroll(client, school["enrollment_code"], name="=1+1;@SUM(A1)")
    await push(client, device["device_token"],
               [sale(school, i + 1, wallet=i + 1) for i in range(len(names))])
    admin = await as_role(client, demo, "admin")
    resp = await admin.get("/admin/sales.csv")
    assert resp.status == 200
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert {r["student"] for r in rows} == {FORMULA_CASES[n] for n in names}
    assert {r["terminal"] for r in rows} == {"'=1+1;'@SUM(A1)"}


# ------------------------------------------------------------------ device names


async def test_device_names_are_cleaned_and_limited_at_enrollment(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    blank = await client.post("/api/v1/devices/enroll", json={
        "enrollment_code": school["enrollment_code"], "name": " \u200b\t\u202e\x1b "})
    assert blank.status == 422
    problem = await blank.json()
    assert problem["errors"][0]["pointer"] == "/name"
    # Refused, so the code is still unused.
    messy = await enroll(client, school["enrollment_code"],
                         name="  Counter\t\t1\u202e \x1b[2J\u200b  \n")
    long = await enroll(client, await _new_code(db_url, school["school_id"]), name="L" * 200)
    stored = dict((r.device_id, r.name) for r in await query(
        db_url, sa.select(devices.c.device_id, devices.c.name)))
    assert stored[messy["device_id"]] == "Counter 1 [2J"
    assert stored[long["device_id"]] == "L" * 64


async def _new_code(db_url: str, school_id: str) -> str:
    from tests.server.conftest_helpers import new_code

    return await new_code(db_url, school_id)


async def test_malformed_http_is_one_line_without_the_header(client: Any,
                                                             caplog: Any) -> None:
    """aiohttp's parser refuses a bare CR in a header before the app runs; its log record
    quoted the line (here a token) under a traceback. Now: one line naming the error kind."""
    from .hostile import send

    token = "tok_secret_" + "x" * 30
    raw = (b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
           + token.encode() + b"\rX\r\n\r\n")
    with caplog.at_level(logging.DEBUG, logger="aiohttp.server"):
        answer = await send(client, raw)
    assert answer.status == 400
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert records, "the refusal is still logged"
    for r in records:
        assert r.exc_info is None and token not in r.getMessage()
        assert "malformed HTTP request" in r.getMessage()
