"""``pos-server``: serve, migrate, seed-demo, enrollment-code, revoke-device, audit-ledger,
reconcile-payments, backup, restore, and the set-up of a real installation: create-school,
create-admin.

Every command exits 0 on success and otherwise prints one line to stderr and exits non-zero;
``--json`` prints exactly one JSON document on stdout (the spec's command-line contract).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import gc
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from shared.money import format_minor

from .backup import BackupError
from .config import ServerConfig
from .storage.engine import DatabaseURLError, create_engine


class CommandError(Exception):
    """An operator mistake: printed as one line, exit 1 (or the error's ``exit_code``)."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pos-server", description=__doc__.split("\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help="sqlite:///path (default ./pos-server.db) or "
                        "postgresql://user@host/db; env POS_DB_URL")
    common.add_argument("--config", help="TOML file with settings (see docs/server.md)")
    common.add_argument("--json", action="store_true", help="print one JSON document")
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", parents=[common], help="migrate, then serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, help="server processes, one per core is best "
                       "(default 1; env POS_WORKERS)")
    serve.add_argument("--log-format", choices=["human", "json"],
                       help="human lines or one JSON object a line (env POS_LOG_FORMAT)")
    sub.add_parser("migrate", parents=[common], help="apply pending schema migrations")
    demo = sub.add_parser("seed-demo", parents=[common], help="create two demo schools")
    demo.add_argument("--history-days", type=int, default=0, metavar="N",
                      help="also push the past N days of sales through the ledger, as a till "
                           "would (the demo launcher uses 14)")
    code = sub.add_parser("enrollment-code", parents=[common], help="new enrollment code")
    code.add_argument("--school", required=True)
    revoke = sub.add_parser("revoke-device", parents=[common], help="revoke a terminal")
    revoke.add_argument("--device", required=True)
    sub.add_parser("audit-ledger", parents=[common], help="re-derive balances from postings")
    reconcile = sub.add_parser("reconcile-payments", parents=[common],
                               help="compare a gateway settlement report with the ledger "
                                    "(changes nothing)")
    reconcile.add_argument("--settlement", required=True, metavar="FILE.csv",
                           help="CSV with reference,amount,currency,status,settled_at")
    backup = sub.add_parser("backup", parents=[common],
                            help="consistent copy of the database while the server serves")
    where = backup.add_mutually_exclusive_group(required=True)
    where.add_argument("--to", metavar="FILE", help="write the backup to FILE")
    where.add_argument("--to-dir", metavar="DIR",
                       help="write pos-server-<UTC time>.db|.dump into DIR (and prune there)")
    backup.add_argument("--keep-daily", type=int, metavar="N",
                        help="with --to-dir: keep the newest backup of each of the last N days")
    backup.add_argument("--keep-weekly", type=int, metavar="N",
                        help="with --to-dir: keep the newest backup of each of the last N weeks")
    restore = sub.add_parser("restore", parents=[common],
                             help="load a backup into an empty database (stop the server first)")
    restore.add_argument("--from", dest="source", required=True, metavar="FILE")
    restore.add_argument("--force", action="store_true",
                         help="replace a database that already holds data")
    school = sub.add_parser("create-school", parents=[common], help="add a school")
    school.add_argument("--name", required=True)
    school.add_argument("--currency", default="SAR", help="ISO 4217 code (default SAR)")
    school.add_argument("--timezone", default="Asia/Riyadh",
                        help="IANA zone: school days and daily limits follow it")
    admin = sub.add_parser("create-admin", parents=[common],
                           help="add an admin console user (a password is generated and "
                                "printed once, unless --password-stdin)")
    admin.add_argument("--email", required=True)
    admin.add_argument("--role", required=True, choices=[
        "platform_admin", "school_admin", "school_manager", "school_viewer"])
    admin.add_argument("--school", help="the school of a school role (admin, manager, viewer)")
    admin.add_argument("--name", default="")
    admin.add_argument("--password-stdin", action="store_true",
                       help="read the password from the first line of stdin (never a flag: "
                            "flags show in ps and shell history)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = ServerConfig.load(args.config, db_url=args.db,
                                   workers=getattr(args, "workers", None),
                                   log_format=getattr(args, "log_format", None))
        if args.command == "serve":
            return _serve(config, args.host, args.port)
        return asyncio.run(_COMMANDS[args.command](config, args))
    except (CommandError, BackupError, DatabaseURLError, ValueError, OSError) as exc:
        print(f"pos-server: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 1))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a database that is down, a broken schema...
        print(f"pos-server: {type(exc).__name__}: {_first_line(exc)}", file=sys.stderr)
        return 1


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""


def _emit(args: argparse.Namespace, data: dict[str, Any], human: str) -> None:
    print(json.dumps(data) if args.json else human)


async def _with_engine(config: ServerConfig,
                       work: Callable[[AsyncEngine], Awaitable[Any]]) -> Any:
    from .storage.migrate import pending

    engine = create_engine(config.db_url)
    try:
        if await pending(engine):
            raise CommandError("database schema is behind: run `pos-server migrate` first")
        return await work(engine)
    finally:
        await engine.dispose()


async def _migrate(config: ServerConfig, args: argparse.Namespace) -> int:
    from .storage.migrate import upgrade

    revision = await upgrade(config.db_url)
    _emit(args, {"revision": revision}, f"database at revision {revision}")
    return 0


async def _seed_demo(config: ServerConfig, args: argparse.Namespace) -> int:
    from .demo import seed

    if not 0 <= args.history_days <= 366:
        raise CommandError("--history-days must be between 0 and 366")

    async def work(engine: AsyncEngine) -> dict[str, Any]:
        data = await seed(engine)
        if args.history_days:
            from .demo_history import seed_history

            data["history"] = await seed_history(engine, data, args.history_days,
                                                 seed_value=data["seed"])
        return data

    data = await _with_engine(config, work)
    names = ", ".join(s["name"] for s in data["schools"])
    past = (f" with {data['history']['sales']} sales over the past {args.history_days} days"
            if "history" in data else "")
    _emit(args, data, f"seeded {names}{past}; use --json to see codes, PINs and passwords")
    return 0


async def _enrollment_code(config: ServerConfig, args: argparse.Namespace) -> int:
    from . import cli_audit
    from .records import RecordError, create_enrollment_code

    async def work(engine: AsyncEngine) -> str:
        async with engine.begin() as conn:
            try:
                code = await create_enrollment_code(conn, args.school, config.enrollment_ttl)
            except RecordError as exc:
                raise CommandError(str(exc)) from None
            await cli_audit.record(  # never the code itself
                conn, "enrollment_code_created", school_id=args.school,
                target_type="enrollment_code",
                after={"expires_in_hours": config.enrollment_ttl.total_seconds() / 3600})
            return code

    code = await _with_engine(config, work)
    _emit(args, {"enrollment_code": code}, code)
    return 0


async def _revoke_device(config: ServerConfig, args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from . import cli_audit
    from .ledger.versions import announce
    from .records import RecordError, revoke_device
    from .storage.schema import devices

    async def work(engine: AsyncEngine) -> None:
        async with engine.begin() as conn:
            try:
                await revoke_device(conn, args.device)
            except RecordError as exc:
                raise CommandError(str(exc)) from None
            school_id = (await conn.execute(sa.select(devices.c.school_id).where(
                devices.c.device_id == args.device))).scalar_one()
            await announce(conn, school_id)  # a server's open stream of it ends now
            await cli_audit.record(conn, "device_revoked", school_id=school_id,
                                   target_type="device", target_id=args.device,
                                   after={"status": "revoked"})

    await _with_engine(config, work)
    _emit(args, {"device_id": args.device, "status": "revoked"}, f"revoked {args.device}")
    return 0


async def _audit(config: ServerConfig, args: argparse.Namespace) -> int:
    from .ledger.audit import audit

    async def work(engine: AsyncEngine) -> tuple[dict[str, Any], dict[str, str]]:
        import sqlalchemy as sa

        from .storage.schema import schools

        async with engine.connect() as conn:
            currencies = {r.school_id: r.currency for r in await conn.execute(
                sa.select(schools.c.school_id, schools.c.currency))}
        return await audit(engine), currencies

    report, currencies = await _with_engine(config, work)
    # People read money, not minor units (the --json report keeps the integers).
    lines = [f"{s['school_id']}: postings sum "
             f"{format_minor(s['postings_sum'], currencies.get(s['school_id'], ''))}, "
             f"{s['wallets']} wallets, {len(s['balance_mismatches'])} mismatches, gaps on "
             f"{len(s['missing_seqs'])} device(s)" for s in report["schools"]]
    _emit(args, report, "\n".join([*lines, "ok" if report["ok"] else "NOT OK"]))
    return 0 if report["ok"] else 1


async def _reconcile_payments(config: ServerConfig, args: argparse.Namespace) -> int:
    from .settlement import SettlementError, read_settlement, reconcile

    try:
        lines = read_settlement(args.settlement)  # a bad file is refused before the database
    except SettlementError as exc:
        raise CommandError(str(exc)) from None
    report = await _with_engine(config, lambda engine: reconcile(engine, lines))
    human = [f"{report['matched']} matched, {len(report['missing_in_ledger'])} missing in the "
             f"ledger, {len(report['missing_in_settlement'])} missing in the settlement, "
             f"{len(report['amount_mismatch'])} amount mismatch(es)"]
    human += [f"missing in ledger: {m['reference']} {format_minor(m['amount'], m['currency'])}"
              for m in report["missing_in_ledger"]]
    human += [f"missing in settlement: {m['reference']} "
              f"{format_minor(m['amount'], m['currency'])}"
              for m in report["missing_in_settlement"]]
    human += [f"amount mismatch: {m['reference']} settled "
              f"{format_minor(m['settlement_amount'], m['settlement_currency'])}, ledger "
              f"{format_minor(m['ledger_amount'], m['ledger_currency'])}"
              for m in report["amount_mismatch"]]
    _emit(args, report, "\n".join(human))
    return 0


async def _backup(config: ServerConfig, args: argparse.Namespace) -> int:
    from . import backup, retention

    now = datetime.now(UTC)
    data = await backup.take(config.db_url, _backup_file(config, args, now), now)
    human = f"backup {data['backup']}: {data['bytes']} bytes, revision {data['schema_revision']}"
    if args.to_dir is not None and (args.keep_daily is not None or args.keep_weekly is not None):
        pruned = retention.prune(Path(args.to_dir), args.keep_daily or 0, args.keep_weekly or 0)
        data["pruned"] = [str(p) for p in pruned]
        human += f"; pruned {len(pruned)} old backup(s)"
    _emit(args, data, human)
    return 0


def _backup_file(config: ServerConfig, args: argparse.Namespace, now: datetime) -> Path:
    from .retention import backup_name
    from .storage.engine import dialect_of

    if args.to_dir is None:
        if args.keep_daily is not None or args.keep_weekly is not None:
            raise CommandError("--keep-daily and --keep-weekly go with --to-dir")
        return Path(args.to)
    directory = Path(args.to_dir)
    if not directory.is_dir():
        raise CommandError(f"no such directory: {directory}")
    return directory / backup_name(dialect_of(config.db_url), now)


async def _restore(config: ServerConfig, args: argparse.Namespace) -> int:
    from .backup import restore

    data = await restore(config.db_url, Path(args.source), force=args.force)
    human = (f"restored {data['restored']} (revision {data['backup_revision']}, now "
             f"{data['schema_revision']}); {data['schools']} school(s) get a full snapshot; "
             f"audit-ledger {'ok' if data['audit_ok'] else 'NOT OK'}")
    _emit(args, data, human)
    return 0 if data["audit_ok"] else 1


async def _create_school(config: ServerConfig, args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from . import cli_audit
    from .records import create_school

    if not re.fullmatch(r"[A-Z]{3}", args.currency):
        raise CommandError(f"not a currency code: {args.currency!r} (three capitals, e.g. SAR)")
    try:
        ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CommandError(f"unknown time zone {args.timezone!r} (e.g. Asia/Riyadh)") from None
    name = args.name.strip()
    if not name or len(name) > 200:
        raise CommandError("the school needs a name of 1 to 200 characters")

    async def work(engine: AsyncEngine) -> str:
        async with engine.begin() as conn:
            school_id = await create_school(conn, name, args.currency, args.timezone)
            await cli_audit.record(conn, "school_created", school_id=school_id,
                                   target_type="school", target_id=school_id,
                                   after={"name": name, "currency": args.currency,
                                          "timezone": args.timezone})
            return school_id

    school_id = await _with_engine(config, work)
    _emit(args, {"school_id": school_id, "name": name, "currency": args.currency,
                 "timezone": args.timezone}, school_id)
    return 0


async def _create_admin(config: ServerConfig, args: argparse.Namespace) -> int:
    from . import cli_audit
    from .records import RecordError, create_admin
    from .secrets import new_password

    generated = not args.password_stdin
    password = new_password() if generated else sys.stdin.readline().rstrip("\r\n")

    async def work(engine: AsyncEngine) -> str:
        async with engine.begin() as conn:
            try:
                user_id = await create_admin(conn, args.email, password, args.role,
                                             args.school, args.name)
            except RecordError as exc:
                raise CommandError(str(exc)) from None
            await cli_audit.record(  # never the password
                conn, "admin_created", school_id=args.school, target_type="admin_user",
                target_id=user_id, after={"email": args.email.strip().lower(),
                                          "role": args.role})
            return user_id

    user_id = await _with_engine(config, work)
    data: dict[str, Any] = {"user_id": user_id, "email": args.email.strip().lower(),
                            "role": args.role, "school_id": args.school}
    human = f"created {data['email']} ({args.role})"
    if generated:  # shown this once; only its argon2 hash is stored
        data["password"] = password
        human += f"; password: {password}"
    _emit(args, data, human)
    return 0


_COMMANDS: dict[str, Callable[[ServerConfig, argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "migrate": _migrate, "seed-demo": _seed_demo, "enrollment-code": _enrollment_code,
    "revoke-device": _revoke_device, "audit-ledger": _audit, "create-school": _create_school,
    "create-admin": _create_admin, "reconcile-payments": _reconcile_payments,
    "backup": _backup, "restore": _restore,
}

ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tfs "%{User-Agent}i"'


def _tune_gc() -> None:
    """A 1,000-sale push allocates ~100k short-lived objects, all freed by reference counting;
    at the default gen-0 threshold (700) the cycle collector still ran ~30 times per push and
    took ~10 ms of it (benchmarks/server_push.py). Collect less often, and leave what was
    loaded at start-up out of every scan."""
    gc.set_threshold(10_000, 10, 10)
    gc.freeze()


def _remove_in(pid: int, directory: str) -> None:
    """atexit runs in forked workers too (gunicorn ends them with sys.exit): only the arbiter
    that made the directory removes it."""
    if os.getpid() == pid:
        shutil.rmtree(directory, ignore_errors=True)


def _serve(config: ServerConfig, host: str, port: int) -> int:
    if config.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Before prometheus-client is imported (by the app): every worker then counts into
        # files of one directory, and a scrape of any worker sums them (sync_server/metrics.py).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = shared = tempfile.mkdtemp(prefix="pos-metrics-")
        atexit.register(_remove_in, os.getpid(), shared)
    from aiohttp import web

    from . import connections, logs
    from .app import create_app
    from .storage.engine import pool_capacity
    from .storage.migrate import upgrade

    logs.configure(config.log_format)
    revision = asyncio.run(upgrade(config.db_url))
    logging.getLogger("sync_server").info("database %s at revision %s",
                                          config.db_url.split("://")[0], revision)
    open_files = connections.raise_open_files_limit()
    cap = connections.connection_cap(config.max_connections, open_files,
                                     pool_capacity(config.db_url, config.db_pool_size))
    logging.getLogger("sync_server").info("open-files limit %d: at most %d connections per "
                                          "worker", open_files, cap)
    guard: dict[str, Any] = {"max_connections": cap, "retry_after": config.retry_after_seconds,
                             "open_files": open_files,
                             "header_timeout": config.header_timeout_seconds}
    def make_app() -> web.Application:  # in each worker process, after the fork
        app = create_app(config)
        _tune_gc()
        return app

    if config.workers > 1:
        from . import workers

        workers.serve(host, port, config.workers, ACCESS_LOG_FORMAT, make_app,
                      json_logs=config.log_format == "json", **guard)
        return 0
    connections.serve_single(make_app(), host, port, access_log_format=ACCESS_LOG_FORMAT,
                             **guard)
    return 0
