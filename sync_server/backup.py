"""``pos-server backup`` and ``restore``: a consistent copy taken while the server serves, and
its way back into an empty (or, with ``--force``, a replaced) database.

SQLite: the online backup API copies every page inside one read transaction, so the copy is
the database as of one instant while the server goes on writing (WAL: readers never block
writers). PostgreSQL: ``pg_dump --format=custom`` reads one snapshot the same way, and
``pg_restore`` loads it. The URL's user, password and host reach the PostgreSQL tools through
their environment (``PGPASSWORD`` …), never on a command line that ``ps`` shows or a log keeps.

A backup is written to ``FILE.partial``, flushed to disk and then renamed: a backup file that
exists is complete. It is created readable by its owner only, like the database it copies
(names, balances, bracelet UIDs, PIN hashes).

After a restore the database holds less than the fleet of terminals knows: every sale synced
after the backup is gone from the ledger. Two things bring it back (spec v1.1, "the fleet is
the server's last backup"): the devices' ``acked_seq`` is lower than the terminals were told,
so they re-send what they hold above it; and each school gets a new ``snapshot_epoch``. The
change counter went back to the backup's value, so the versions written after the backup will
be used again for other rows: a terminal whose cursor points past the backup would, once the
counter caught up, be sent a delta that skips rows, and the rows changed after the backup
(restored to their older values) would never reach it. A cursor from another epoch gets a
full snapshot.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from .storage.engine import async_url, create_engine, dialect_of, private_file

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
PG_BIN_DIRS = "/usr/lib/postgresql/{major}/bin"  # Debian's layout; else the tools on PATH


class BackupError(Exception):
    """Said to the operator in one line; nothing was changed (exit 1)."""

    exit_code = 1


class RestoreRefused(BackupError):
    """The target database holds data and ``--force`` was not given (exit 2)."""

    exit_code = 2


# ---------------------------------------------------------------------------------- backup


async def take(db_url: str, dest: Path, now: datetime | None = None) -> dict[str, Any]:
    """Copy the database at ``db_url`` into ``dest``; the spec's ``--json`` document."""
    dest, partial = _start_file(dest)
    taken_at = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    try:
        if dialect_of(db_url) == "sqlite":
            revision = _sqlite_backup(_sqlite_path(db_url), partial)
            database = "sqlite"
        else:
            revision = await _pg_backup(db_url, partial)
            database = "postgresql"
        _fsync(partial)
        os.replace(partial, dest)
        _fsync(dest.parent)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return {"backup": str(dest), "bytes": dest.stat().st_size, "database": database,
            "schema_revision": revision, "taken_at": taken_at}


def _start_file(dest: Path) -> tuple[Path, Path]:
    dest = dest.absolute()
    if dest.is_dir():
        raise BackupError(f"{dest} is a directory: give a file name (or use --to-dir)")
    if not dest.parent.is_dir():
        raise BackupError(f"no such directory: {dest.parent}")
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)  # left by a backup that was killed
    _create_private(partial)
    return dest, partial


def _sqlite_path(db_url: str) -> Path:
    return Path(async_url(db_url).database or "")


def _sqlite_backup(source: Path, partial: Path) -> str | None:
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(partial)
    try:
        # pages=-1 (the default): every page in one step, inside one read transaction, so
        # the copy is one instant of the database however busy the server is.
        src.backup(dst)
        # One self-contained file: no -wal beside it to forget when copying the backup away.
        dst.execute("PRAGMA journal_mode=DELETE")
        if dst.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise BackupError("the copy failed SQLite's quick_check; the database needs a look")
        return _sqlite_revision(dst)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"cannot copy {source}: {exc}") from None
    finally:
        dst.close()
        src.close()


def _sqlite_revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:  # no schema at all
        return None
    return str(row[0]) if row else None


async def _pg_backup(db_url: str, partial: Path) -> str | None:
    engine = create_engine(db_url)
    try:
        major = await _server_major(engine)
        revision = await _pg_revision(engine)
    finally:
        await engine.dispose()
    _run([_pg_tool("pg_dump", major), "--format=custom", "--no-password",
          f"--file={partial}"], db_url, "pg_dump")
    return revision


async def _server_major(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        number = (await conn.execute(sa.text("SHOW server_version_num"))).scalar_one()
    return int(number) // 10000


async def _pg_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        exists = (await conn.execute(sa.text(
            "SELECT to_regclass('public.alembic_version') IS NOT NULL"))).scalar_one()
        if not exists:
            return None
        value = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                 ).scalar_one_or_none()
    return str(value) if value is not None else None


def _pg_tool(name: str, major: int) -> str:
    """The tool of the server's major version (Debian keeps one directory per version); a
    ``pg_dump`` older than the server refuses to dump it, so a PATH one is checked."""
    versioned = Path(PG_BIN_DIRS.format(major=major)) / name
    if versioned.is_file():
        return str(versioned)
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: install postgresql-client-{major}")
    out = subprocess.run([found, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"(\d+)", out.stdout)
    if match and int(match.group(1)) < major:
        raise BackupError(f"{found} is version {match.group(1)}, older than the server "
                          f"({major}): install postgresql-client-{major}")
    return found


def pg_environment(db_url: str) -> dict[str, str]:
    """libpq's environment for the URL: the password travels here, never in argv."""
    url = async_url(db_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    parts = {"PGHOST": url.host, "PGPORT": str(url.port) if url.port else None,
             "PGUSER": url.username, "PGPASSWORD": url.password, "PGDATABASE": url.database}
    query = {k: v if isinstance(v, str) else v[0] for k, v in url.query.items()}
    if query.get("host") and not url.host:
        parts["PGHOST"] = query["host"]
    if query.get("sslmode"):
        parts["PGSSLMODE"] = query["sslmode"]
    env.update({k: v for k, v in parts.items() if v})
    return env


def _run(argv: list[str], db_url: str, what: str) -> str:
    done = subprocess.run(argv, env=pg_environment(db_url), capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        raise BackupError(f"{what} failed: {lines[-1] if lines else f'exit {done.returncode}'}")
    return done.stdout


# --------------------------------------------------------------------------------- restore


async def restore(db_url: str, source: Path, *, force: bool = False) -> dict[str, Any]:
    """Load ``source`` into the database at ``db_url``, migrate it to this release's schema,
    give every school a new snapshot epoch and write an audit row; then audit the ledger.

    Everything that can be checked is checked before the target is touched: the file's kind,
    that it matches the URL, that this release knows its schema, and that the target is empty
    (or ``force``)."""
    from alembic.script import ScriptDirectory

    from .ledger.audit import audit
    from .storage.migrate import alembic_config, upgrade

    source = _existing(source)
    kind = backup_kind(source)
    target = dialect_of(db_url)
    if kind != target:
        raise BackupError(f"{source.name} is a {kind} backup; {target} needs a {target} one")
    engine = create_engine(db_url)
    try:
        tables = await _table_count(engine, target)
        major = await _server_major(engine) if kind == "postgresql" else 0
    finally:
        await engine.dispose()
    revision = (_sqlite_file_revision(source) if kind == "sqlite"
                else _pg_file_revision(source, db_url, major))
    known = {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if revision is None or revision not in known:
        raise BackupError(f"{source.name} has schema revision {revision!r}, which this release "
                          "does not know (a backup of a newer release, or not ours)")
    if tables and not force:
        raise RestoreRefused(
            f"the database already holds {tables} tables; stop the server, then add --force "
            "to replace everything in it with the backup")
    if kind == "sqlite":
        _sqlite_restore(source, _sqlite_path(db_url))
    else:
        await _pg_restore(source, db_url, major, wipe=bool(tables))
    now_revision = await upgrade(db_url)
    engine = create_engine(db_url)
    try:
        schools = await _after_restore(engine, source, revision, now_revision)
        report = await audit(engine)
    finally:
        await engine.dispose()
    return {"restored": str(source), "database": target,
            "backup_revision": revision, "schema_revision": now_revision,
            "schools": schools, "audit_ok": report["ok"], "audit": report}


def _existing(source: Path) -> Path:
    if not source.is_file():
        raise BackupError(f"no backup file at {source}")
    return source.absolute()


def backup_kind(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "postgresql"
    raise BackupError(f"{path.name} is not a pos-server backup (neither SQLite nor pg_dump's "
                      "custom format)")


def _sqlite_file_revision(path: Path) -> str | None:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise BackupError(f"{path.name} is damaged (SQLite quick_check failed)")
        return _sqlite_revision(conn)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path.name} cannot be read: {exc}") from None
    finally:
        conn.close()


def _pg_file_revision(path: Path, db_url: str, major: int) -> str | None:
    """The revision inside a dump, read by ``pg_restore`` as a script of that one table."""
    script = _run([_pg_tool("pg_restore", major), "--data-only", "--table=alembic_version",
                   "--file=-", str(path)], db_url, "pg_restore")
    lines = script.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("COPY ") and "alembic_version" in line and i + 1 < len(lines):
            value = lines[i + 1].strip()
            return None if value == "\\." else value
    return None


async def _table_count(engine: AsyncEngine, dialect: str) -> int:
    query = ("SELECT count(*) FROM sqlite_master WHERE type = 'table'" if dialect == "sqlite"
             else "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
    async with engine.connect() as conn:
        return int((await conn.execute(sa.text(query))).scalar_one())


def _sqlite_restore(source: Path, target: Path) -> None:
    private_file(target)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target, timeout=30)
    try:
        src.backup(dst)  # one transaction on the target: all of the backup or nothing
        dst.execute("PRAGMA journal_mode=WAL")
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"cannot write {target}: {exc}") from None
    finally:
        dst.close()
        src.close()


async def _pg_restore(source: Path, db_url: str, major: int, *, wipe: bool) -> None:
    if wipe:  # objects a newer schema added must go too, not only the dump's own
        engine = create_engine(db_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(sa.text("DROP SCHEMA public CASCADE"))
                await conn.execute(sa.text("CREATE SCHEMA public"))
        finally:
            await engine.dispose()
    database = async_url(db_url).database or ""
    _run([_pg_tool("pg_restore", major), "--no-owner", "--no-privileges", "--exit-on-error",
          "--single-transaction", "--no-password", f"--dbname={database}", str(source)],
         db_url, "pg_restore")


async def _after_restore(engine: AsyncEngine, source: Path, revision: str,
                         now_revision: str | None) -> int:
    """New snapshot epochs (module docstring), announced to the event streams of servers still
    running on PostgreSQL, and the audit row, in one transaction."""
    from .cli_audit import record
    from .ledger.versions import announce
    from .storage.schema import schools

    async with engine.begin() as conn:
        ids = (await conn.execute(sa.select(schools.c.school_id))).scalars().all()
        for school_id in ids:
            await conn.execute(sa.update(schools).where(schools.c.school_id == school_id)
                               .values(snapshot_epoch=secrets.token_hex(8)))
            await announce(conn, school_id)  # open event streams tell their tills at once
        await record(conn, "database_restored", school_id=None, target_type="database",
                     after={"backup": source.name, "backup_revision": revision,
                            "schema_revision": now_revision},
                     note=f"restored from {source.name}; every school's terminals get a full "
                          "snapshot and re-send what they hold above their acked_seq")
    return len(ids)


# ------------------------------------------------------------------------------- files


def _create_private(path: Path) -> None:
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
