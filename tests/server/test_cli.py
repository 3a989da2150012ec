"""``pos-server`` as operators use it: real subprocesses, real databases."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.health import wait_until_healthy
from tests.conftest import free_port

from .helpers import sale

PY = sys.executable


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "sync_server", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def test_migrate_seed_and_audit_on_an_empty_database(db_factory: Any) -> None:
    url = db_factory.new_empty()
    migrated = run("migrate", "--db", url, "--json")
    assert migrated.returncode == 0, migrated.stderr
    assert json.loads(migrated.stdout)["revision"]
    seeded = run("seed-demo", "--db", url, "--json")
    assert seeded.returncode == 0, seeded.stderr
    demo = json.loads(seeded.stdout)
    assert len(demo["schools"]) == 2
    assert demo["platform_admin"]["email"] and demo["platform_admin"]["password"]
    for school in demo["schools"]:
        active = [w for w in school["wallets"] if w["status"] == "active"]
        assert len(active) >= 50 and all(w["balance"] > 0 for w in active)
        assert len({w["credential_uid"] for w in school["wallets"]}) == len(school["wallets"])
        assert sum(w["status"] == "frozen" for w in school["wallets"]) == 1
        assert school["blocked_credential_uid"]
        assert len(school["products"]) == 10 and len(school["cashiers"]) == 2
        assert all(c["pin"].isdigit() for c in school["cashiers"])
        assert school["enrollment_code"] and school["admin"]["password"]
        assert {"school_id", "name", "currency"} <= set(school)
    audit = run("audit-ledger", "--db", url, "--json")
    assert audit.returncode == 0, audit.stderr
    report = json.loads(audit.stdout)
    assert report["ok"] is True
    assert [s["postings_sum"] for s in report["schools"]] == [0, 0]
    assert sorted(s["wallets"] for s in report["schools"]) == [61, 61]
    human = run("audit-ledger", "--db", url)
    assert human.returncode == 0, human.stderr
    for school in demo["schools"]:  # money, not minor units; --json keeps the integers
        assert f"postings sum 0.00 {school['currency']}," in human.stdout, human.stdout


def test_enrollment_code_and_errors_are_one_line(db_url: str, demo: dict[str, Any]) -> None:
    school_id = demo["schools"][0]["school_id"]
    out = run("enrollment-code", "--db", db_url, "--school", school_id, "--json")
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)["enrollment_code"]) == 14
    bad = run("enrollment-code", "--db", db_url, "--school", "sch_nope", "--json")
    assert bad.returncode != 0 and bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1 and "sch_nope" in bad.stderr
    nodb = run("audit-ledger", "--db", "mysql://x/y")
    assert nodb.returncode != 0 and len(nodb.stderr.strip().splitlines()) == 1
    unknown_device = run("revoke-device", "--db", db_url, "--device", "dev_nope")
    assert unknown_device.returncode != 0


def test_audit_detects_a_tampered_balance(db_url: str, demo: dict[str, Any]) -> None:
    import asyncio

    import sqlalchemy as sa

    from sync_server.storage.engine import create_engine
    from sync_server.storage.schema import wallets

    wallet_id = demo["schools"][0]["wallets"][0]["wallet_id"]

    async def tamper() -> None:
        engine = create_engine(db_url)
        async with engine.begin() as conn:
            await conn.execute(sa.update(wallets).where(wallets.c.wallet_id == wallet_id)
                               .values(balance=wallets.c.balance + 1))
        await engine.dispose()

    asyncio.run(tamper())
    out = run("audit-ledger", "--db", db_url, "--json")
    assert out.returncode == 1
    report = json.loads(out.stdout)
    assert report["ok"] is False
    mismatch = report["schools"][[s["school_id"] for s in report["schools"]].index(
        demo["schools"][0]["school_id"])]["balance_mismatches"]
    assert mismatch == [{"wallet_id": wallet_id,
                         "balance": demo["schools"][0]["wallets"][0]["balance"] + 1,
                         "postings_sum": demo["schools"][0]["wallets"][0]["balance"]}]


def test_serve_logs_requests_revoke_works_and_sigterm_stops_cleanly(
        db_url: str, demo: dict[str, Any], tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "server.log").open("w+")
    proc = subprocess.Popen([PY, "-m", "sync_server", "serve", "--db", db_url, "--port",
                             str(port)], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, process=proc)
        school = demo["schools"][0]
        enrolled = httpx.post(f"{base}/api/v1/devices/enroll",
                              json={"enrollment_code": school["enrollment_code"], "name": "T1"})
        assert enrolled.status_code == 201
        token = enrolled.json()["device_token"]
        headers = {"Authorization": f"Bearer {token}"}
        pushed = httpx.post(f"{base}/api/v1/sync/sales", json={"sales": [sale(school, 1)]},
                            headers=headers)
        assert pushed.json()["results"][0]["status"] == "applied"
        revoked = run("revoke-device", "--db", db_url, "--device", enrolled.json()["device_id"])
        assert revoked.returncode == 0, revoked.stderr
        after = httpx.post(f"{base}/api/v1/sync/sales", json={"sales": []}, headers=headers)
        assert after.status_code == 403
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    log.seek(0)
    text = log.read()
    assert '"POST /api/v1/sync/sales HTTP/1.1" 200' in text
    assert '"GET /api/v1/health HTTP/1.1" 200' in text
    assert token not in text  # tokens never reach the log


@pytest.mark.parametrize("env_name", ["POS_DB_URL"])
def test_db_url_from_environment(db_url: str, env_name: str) -> None:
    out = run("audit-ledger", "--json", env={env_name: db_url})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["ok"] is True
