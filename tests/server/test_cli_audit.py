"""Command-line actions that change data leave audit rows naming the command line and the OS
user: real ``pos-server`` subprocesses against real databases."""

from __future__ import annotations

import asyncio
import getpass
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from shared.clock import utcnow
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import audit_log, devices

from .test_cli import run


def rows(db_url: str, action: str) -> list[Any]:
    async def read() -> list[Any]:
        engine = create_engine(db_url)
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(sa.select(audit_log).where(
                    audit_log.c.action == action).order_by(audit_log.c.audit_id))).all())
        finally:
            await engine.dispose()

    return asyncio.run(read())


def by_cli(row: Any) -> bool:
    return bool(row.actor_id == "cli" and row.actor_email == f"cli:{getpass.getuser()}")


def test_create_school_admin_code_and_revoke_are_audited(db_url: str,
                                                         demo: dict[str, Any]) -> None:
    school = run("create-school", "--db", db_url, "--name", "North School", "--json")
    assert school.returncode == 0, school.stderr
    school_id = json.loads(school.stdout)["school_id"]
    [row] = rows(db_url, "school_created")
    assert by_cli(row) and row.school_id == school_id and row.target_id == school_id
    assert row.after == {"name": "North School", "currency": "SAR", "timezone": "Asia/Riyadh"}

    admin = run("create-admin", "--db", db_url, "--email", "Head@North.example", "--role",
                "school_admin", "--school", school_id, "--json")
    assert admin.returncode == 0, admin.stderr
    made = json.loads(admin.stdout)
    [row] = rows(db_url, "admin_created")
    assert by_cli(row) and row.target_type == "admin_user" and row.target_id == made["user_id"]
    assert row.after == {"email": "head@north.example", "role": "school_admin"}
    assert made["password"] not in json.dumps([row.after, row.note])

    code = run("enrollment-code", "--db", db_url, "--school", school_id, "--json")
    assert code.returncode == 0, code.stderr
    secret = json.loads(code.stdout)["enrollment_code"]
    [row] = rows(db_url, "enrollment_code_created")
    assert by_cli(row) and row.school_id == school_id
    assert secret not in json.dumps([row.after, row.note, row.target_id])

    # A refused command writes nothing.
    refused = run("create-admin", "--db", db_url, "--email", "head@north.example", "--role",
                  "school_admin", "--school", school_id)
    assert refused.returncode == 1 and len(rows(db_url, "admin_created")) == 1


def add_device(db_url: str, school_id: str) -> str:
    """A terminal row as enrollment leaves it (enrolling is the API's test, not this one's)."""
    async def insert() -> None:
        engine = create_engine(db_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(sa.insert(devices).values(
                    device_id="dev_cli_audit", school_id=school_id, name="Till 9",
                    token_hash="0" * 64, status="active", enrolled_at=utcnow()))
        finally:
            await engine.dispose()

    asyncio.run(insert())
    return "dev_cli_audit"


def test_revoke_device_is_audited(db_url: str, demo: dict[str, Any]) -> None:
    device = add_device(db_url, demo["schools"][0]["school_id"])
    revoked = run("revoke-device", "--db", db_url, "--device", device)
    assert revoked.returncode == 0, revoked.stderr
    [row] = rows(db_url, "device_revoked")
    assert by_cli(row) and row.target_id == device
    assert row.school_id == demo["schools"][0]["school_id"]


def test_restore_is_audited_in_the_restored_database(sqlite_factory: Any,
                                                     tmp_path: Path) -> None:
    url = sqlite_factory.new()
    backup = tmp_path / "copy.db"
    taken = run("backup", "--db", url, "--to", str(backup))
    assert taken.returncode == 0, taken.stderr
    restored = run("restore", "--db", url, "--from", str(backup), "--force", "--json")
    assert restored.returncode == 0, restored.stderr
    [row] = rows(url, "database_restored")
    assert by_cli(row) and row.target_type == "database" and row.after["backup"] == "copy.db"
