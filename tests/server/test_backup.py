"""``pos-server backup`` and ``restore`` as an operator runs them (docs/server.md, "Backup and
restore"): a consistent copy while pushes are being applied, a restore that refuses to
overwrite data without ``--force``, an older backup migrated up on restore, and the retention
rule of ``--to-dir --keep-daily --keep-weekly``. The full drill with tills is
test_backup_drill.py."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic import command

from sync_server import retention
from sync_server.backup import pg_environment
from sync_server.cli import main
from sync_server.storage.engine import create_engine
from sync_server.storage.migrate import alembic_config
from sync_server.storage.schema import audit_log, sales, schools
from tests.conftest import DatabaseFactory

from .conftest_helpers import new_code
from .helpers import sale
from .serve_process import Ran, serve
from .test_migrations_with_data import HEAD


def pos_server(*args: str) -> Ran:
    """``pos-server ARGS`` in this process (the same ``main`` the console script runs): a
    new Python per command cost seconds each on a loaded machine."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return Ran(code, out.getvalue(), err.getvalue())


def backup_file(db_factory: DatabaseFactory, tmp_path: Path, name: str = "copy") -> Path:
    return tmp_path / f"{name}.{'db' if db_factory.kind == 'sqlite' else 'dump'}"


async def _count(db_url: str, table: sa.Table) -> int:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(sa.select(sa.func.count()).select_from(table)))
                       .scalar_one())
    finally:
        await engine.dispose()


async def _epochs(db_url: str) -> dict[str, str]:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            return {r.school_id: r.snapshot_epoch for r in await conn.execute(
                sa.select(schools.c.school_id, schools.c.snapshot_epoch))}
    finally:
        await engine.dispose()


def test_backup_while_the_server_applies_pushes_is_a_consistent_copy(
        db_factory: DatabaseFactory, tmp_path: Path) -> None:
    db_url = db_factory.new()
    school = db_factory.demo["schools"][0]
    stop = threading.Event()
    pushed: list[int] = []
    failures: list[str] = []
    with serve(db_url, tmp_path) as server:
        code = asyncio.run(new_code(db_url, school["school_id"]))
        enrolled = httpx.post(f"{server.url}/api/v1/devices/enroll",
                              json={"enrollment_code": code, "name": "Busy"}).json()

        def till() -> None:  # pushes batches of 20 sales as fast as the server takes them
            seq = 0
            with httpx.Client(base_url=server.url, timeout=30, headers={
                    "Authorization": f"Bearer {enrolled['device_token']}"}) as http:
                while not stop.is_set():
                    batch = [sale(school, seq + i + 1, wallet=1 + (seq + i) % 40)
                             for i in range(20)]
                    answer = http.post("/api/v1/sync/sales", json={"sales": batch})
                    if answer.status_code != 200:
                        failures.append(answer.text)
                        return
                    seq += 20
                    pushed.append(seq)

        thread = threading.Thread(target=till)
        thread.start()
        try:
            while len(pushed) < 3:
                stop.wait(0.05)
            copies = []
            for n in range(2):
                dest = backup_file(db_factory, tmp_path, f"busy{n}")
                taken = pos_server("backup", "--db", db_url, "--to", str(dest), "--json")
                assert taken.returncode == 0, taken.stderr
                copies.append(dest)
            during = len(pushed)
        finally:
            stop.set()
            thread.join(60)
    assert not failures, failures[0]
    assert during >= 3 and not list(tmp_path.glob("*.partial"))
    sold = []
    for n, copy in enumerate(copies):  # each copy is a whole ledger, audited
        if db_factory.kind == "sqlite":
            copy_url = f"sqlite:///{copy}"
        else:
            copy_url = db_factory.new_empty()
            restored = pos_server("restore", "--db", copy_url, "--from", str(copy))
            assert restored.returncode == 0, restored.stderr
        audit = pos_server("audit-ledger", "--db", copy_url, "--json")
        assert audit.returncode == 0, f"copy {n}: {audit.stdout}{audit.stderr}"
        report = json.loads(audit.stdout)
        assert report["ok"] and all(not s["missing_seqs"] for s in report["schools"])
        sold.append(asyncio.run(_count(copy_url, sales)))
    assert 0 < sold[0] <= sold[1] <= pushed[-1]


def test_restore_refuses_a_database_with_data_unless_forced(
        db_factory: DatabaseFactory, tmp_path: Path) -> None:
    source_url, target_url = db_factory.new(), db_factory.new()
    copy = backup_file(db_factory, tmp_path)
    assert pos_server("backup", "--db", source_url, "--to", str(copy)).returncode == 0
    assert copy.stat().st_mode & 0o077 == 0  # names and balances: owner only
    epochs = asyncio.run(_epochs(target_url))
    audit_rows = asyncio.run(_count(target_url, audit_log))

    refused = pos_server("restore", "--db", target_url, "--from", str(copy))
    assert refused.returncode == 2
    assert "already holds" in refused.stderr and "--force" in refused.stderr
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert asyncio.run(_epochs(target_url)) == epochs  # untouched
    assert asyncio.run(_count(target_url, audit_log)) == audit_rows

    forced = pos_server("restore", "--db", target_url, "--from", str(copy), "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    doc = json.loads(forced.stdout)
    assert doc["audit_ok"] is True and doc["schools"] == 2
    after = asyncio.run(_epochs(target_url))
    assert after.keys() == epochs.keys()
    assert all(after[s] != epochs[s] for s in after)  # every till gets a full snapshot
    assert asyncio.run(_count(target_url, audit_log)) == audit_rows + 1

    other = tmp_path / ("x.dump" if db_factory.kind == "sqlite" else "x.db")
    other.write_bytes(b"not a backup at all")
    wrong = pos_server("restore", "--db", db_factory.new_empty(), "--from", str(other))
    assert wrong.returncode == 1 and "not a pos-server backup" in wrong.stderr
    nowhere = pos_server("backup", "--db", source_url, "--to", str(tmp_path / "no" / "x"))
    assert nowhere.returncode == 1 and "no such directory" in nowhere.stderr


async def _downgrade(db_url: str, revision: str) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), revision))
    finally:
        await engine.dispose()


def test_restore_of_an_older_release_s_backup_migrates_it_up(
        db_factory: DatabaseFactory, tmp_path: Path) -> None:
    old_url = db_factory.new()
    asyncio.run(_downgrade(old_url, "0006"))  # the release before restrictions
    copy = backup_file(db_factory, tmp_path)
    taken = pos_server("backup", "--db", old_url, "--to", str(copy), "--json")
    assert json.loads(taken.stdout)["schema_revision"] == "0006"
    target = db_factory.new_empty()
    restored = pos_server("restore", "--db", target, "--from", str(copy), "--json")
    assert restored.returncode == 0, restored.stderr
    doc = json.loads(restored.stdout)
    assert doc["backup_revision"] == "0006" and doc["schema_revision"] == HEAD
    assert doc["audit_ok"] is True
    assert pos_server("audit-ledger", "--db", target).returncode == 0


def _names(*stamps: datetime) -> list[Path]:
    return [Path(retention.backup_name("sqlite", at)) for at in stamps]


def _newest_per(paths: list[Path], key: Any, count: int) -> set[Path]:
    """The newest backup of each of the last ``count`` groups (days or weeks) that have one."""
    groups: dict[Any, Path] = {}
    for path in paths:
        at = retention.taken_at(path)
        assert at is not None
        best = groups.get(key(at))
        if best is None or retention.taken_at(best) < at:  # type: ignore[operator]
            groups[key(at)] = path
    return {groups[k] for k in sorted(groups)[-count:]} if count else set()


def test_retention_keeps_the_newest_of_each_recent_day_and_week() -> None:
    start = datetime(2026, 6, 3, 2, 15, tzinfo=UTC)
    stamps = [start + timedelta(days=d) for d in range(120)]
    stamps += [stamps[-1] + timedelta(hours=3), stamps[50] + timedelta(hours=1)]  # two a day
    paths = _names(*stamps)
    doomed = retention.to_prune(paths, keep_daily=14, keep_weekly=8)
    kept = set(paths) - set(doomed)
    by_day = _newest_per(paths, lambda at: at.date(), 14)
    by_week = _newest_per(paths, lambda at: at.isocalendar()[:2], 8)
    assert kept == by_day | by_week
    assert len(by_day) == 14 and len(by_week) == 8 and len(kept) < 22  # they overlap
    assert Path(retention.backup_name("sqlite", stamps[-2])) not in doomed  # the newest
    assert Path(retention.backup_name("sqlite", stamps[-3])) in doomed  # same day, older
    assert [retention.taken_at(p) for p in doomed] == sorted(
        retention.taken_at(p) for p in doomed)  # type: ignore[type-var]
    # counted in days that have a backup, not calendar days: a server off for months keeps
    # its last 14 dailies
    assert len(retention.to_prune(paths[:20], 14, 0)) == 6
    # nothing asked for: only the newest stays; other files are never candidates
    assert set(paths) - set(retention.to_prune(paths, 0, 0)) == {paths[-2]}
    assert retention.to_prune([Path("pos-server.db"), Path("notes.txt")], 0, 0) == []
    with pytest.raises(ValueError):
        retention.to_prune(paths, -1, 8)


def test_backup_to_dir_prunes_only_its_own_files(sqlite_factory: DatabaseFactory,
                                                 tmp_path: Path) -> None:
    """The pruning is the same code for both databases: SQLite is enough."""
    db_url = sqlite_factory.new()
    old = [tmp_path / n for n in (retention.backup_name("sqlite", datetime(2025, 1, d, tzinfo=UTC))
                                  for d in (1, 2, 3))]
    for path in old:
        path.write_bytes(b"SQLite format 3\x00old")
    mine_not = tmp_path / "notes.txt"
    mine_not.write_text("left alone")
    done = pos_server("backup", "--db", db_url, "--to-dir", str(tmp_path), "--keep-daily", "2",
                      "--json")
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    new = Path(doc["backup"])
    assert new.parent == tmp_path and retention.taken_at(new) is not None
    assert doc["pruned"] == [str(p) for p in old[:2]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [old[2].name, new.name, mine_not.name])
    wrong = pos_server("backup", "--db", db_url, "--to", str(tmp_path / "x.db"),
                       "--keep-daily", "2")
    assert wrong.returncode == 1 and "--to-dir" in wrong.stderr


def test_the_postgresql_password_travels_in_the_environment_only() -> None:
    env = pg_environment("postgresql://pos:s3cret%21@db.example:6543/pos?sslmode=require")
    assert env["PGPASSWORD"] == "s3cret!" and env["PGUSER"] == "pos"
    assert env["PGHOST"] == "db.example" and env["PGPORT"] == "6543"
    assert env["PGDATABASE"] == "pos" and env["PGSSLMODE"] == "require"


def test_the_systemd_backup_unit_runs_a_command_pos_server_accepts() -> None:
    """The unit's ExecStart goes through the real argument parser (a typo there would only
    show at 02:30, in a journal nobody reads), and the timer fires daily, catching up."""
    import shlex

    from sync_server.cli import _parser

    units = Path(__file__).resolve().parents[2] / "packaging" / "systemd"
    service = (units / "pos-backup.service").read_text()
    exec_start = next(line.split("=", 1)[1] for line in service.splitlines()
                      if line.startswith("ExecStart="))
    argv = shlex.split(exec_start)
    assert argv[0].endswith("/pos-server")
    args = _parser().parse_args(argv[1:])
    assert args.command == "backup" and args.to_dir and args.keep_daily == 14
    assert args.keep_weekly == 8
    assert "Type=oneshot" in service and "UMask=0077" in service
    assert args.to_dir in service.split("ReadWritePaths=", 1)[1].splitlines()[0]
    timer = (units / "pos-backup.timer").read_text()
    assert "OnCalendar=*-*-* 02:30:00" in timer and "Persistent=true" in timer
