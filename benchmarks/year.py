"""A school year of data: seed it through the ledger, then time every console page on it.

``seed``: one school, 1,500 students, 4 tills, 180 school days, about 1.2 million sales with
voids, reversals, top-ups and exceptions (see benchmarks/year_seed.py), into a kept database:
the SQLite file /work/bench-data/year.sqlite and the PostgreSQL database ``pos_year_bench``.
The parameters and counts are written beside it (``<name>.json``); ``--reuse`` keeps data
seeded with the same parameters and seeds again otherwise. Then ``audit-ledger`` on it.

``measure``: ``pos-server serve`` on the seeded database as its own process; an admin logs in
and every console page and report is requested 20 times (p50, p95), beside a baseline measured
in the same run: the page's main query as a ``count(*)`` through the plain driver (sqlite3 /
asyncpg). Also the CSV export of a month (rows/s, the server process's peak RSS sampled from
/proc during the export), ``audit-ledger`` on the year, and a new terminal's full snapshot.

Run: .venv/bin/python benchmarks/year.py seed [--db sqlite|pg|both] [--reuse] [--students N
     --days N --sales-per-day N]
     .venv/bin/python benchmarks/year.py measure [--db sqlite|pg|both] [--requests 20]
Targets (issue 15): every page p95 <= 150 ms on PostgreSQL and <= 250 ms on SQLite; CSV of a
month >= 50,000 rows/s with RSS within 50 MB of where it started; audit-ledger <= 60 s;
a new terminal's snapshot <= 1 s. Exit 1 if one is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import PG_ADMIN_URL, _pg
from benchmarks.year_seed import Plan, Seeder, backdate

DATA = Path(os.environ.get("POS_BENCH_DATA", "/work/bench-data"))
PG_NAME = "pos_year_bench"


def db_url(kind: str, suffix: str = "") -> str:
    if kind == "sqlite":
        return f"sqlite:///{DATA / f'year{suffix}.sqlite'}"
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_NAME + suffix


def params_file(kind: str, suffix: str = "") -> Path:
    return DATA / f"year{suffix}.{kind}.json"


def recorded(kind: str, suffix: str = "") -> dict[str, Any] | None:
    path = params_file(kind, suffix)
    return json.loads(path.read_text()) if path.exists() else None


def fresh(kind: str, suffix: str) -> str:
    """An empty database of ``kind`` at its kept place (whatever was there is dropped)."""
    DATA.mkdir(parents=True, exist_ok=True)  # the progress file is kept here for both kinds
    params_file(kind, suffix).unlink(missing_ok=True)
    if kind == "sqlite":
        for extra in ("", "-wal", "-shm"):
            Path(str(DATA / f"year{suffix}.sqlite") + extra).unlink(missing_ok=True)
    else:
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{PG_NAME}{suffix}" WITH (FORCE)'))
        asyncio.run(_pg(f'CREATE DATABASE "{PG_NAME}{suffix}"'))
    return db_url(kind, suffix)


async def seed(kind: str, url: str, plan: Plan, suffix: str) -> dict[str, Any]:
    from sync_server.storage.engine import create_engine
    from sync_server.storage.migrate import upgrade

    await upgrade(url)
    engine = create_engine(url)
    started = time.perf_counter()

    def progress(days: int, day: Any, counts: Any) -> None:
        """After every day: what is in the database so far, so a year cut short can still be
        measured (it says how many days it holds)."""
        params_file(kind, suffix).write_text(json.dumps({
            "plan": plan.as_dict(), "school_id": seeder.school_id, "db_url": url,
            "complete": False, "days_done": days, "last_day": str(day),
            "seconds": time.perf_counter() - started, "counts": dataclasses.asdict(counts)},
            indent=2))

    try:
        seeder = Seeder(engine, plan, log=lambda line: print(f"[{kind}] {line}", flush=True),
                        on_day=progress)
        counts = await seeder.run()
        await backdate(engine, seeder.school_id)
    finally:
        await engine.dispose()
    elapsed = time.perf_counter() - started
    return {"plan": plan.as_dict(), "school_id": seeder.school_id, "seconds": elapsed,
            "counts": dataclasses.asdict(counts), "db_url": url, "complete": True,
            "days_done": plan.days, "backdated": True}


async def _backdate(url: str, school_id: str) -> None:
    from sync_server.storage.engine import create_engine

    engine = create_engine(url)
    try:
        await backdate(engine, school_id)
    finally:
        await engine.dispose()


async def _pg_analyze(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def audit(url: str) -> tuple[bool, float]:
    import subprocess

    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "sync_server", "audit-ledger", "--db", url,
                          "--json"], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    ok = out.returncode == 0 and bool(json.loads(out.stdout)["ok"])
    return ok, elapsed


def kinds(arg: str) -> list[str]:
    return ["sqlite", "pg"] if arg == "both" else [arg]


def cmd_seed(args: argparse.Namespace) -> int:
    plan = Plan(students=args.students, days=args.days, sales_per_day=args.sales_per_day)
    for kind in kinds(args.db):
        have = recorded(kind, args.suffix)
        if (args.reuse and have is not None and have["plan"] == plan.as_dict()
                and have.get("complete", True)):
            print(f"[{kind}] reusing the year seeded with {have['plan']}")
            continue
        record = asyncio.run(seed(kind, fresh(kind, args.suffix), plan, args.suffix))
        params_file(kind, args.suffix).write_text(json.dumps(record, indent=2))
        c = record["counts"]
        done = c["sales"] + c["voids"] + c["rejected"]
        print(f"[{kind}] seeded {c['sales']:,} sales, {c['voids']:,} voids, "
              f"{c['rejected']:,} rejected, {c['reversals']:,} reversals, {c['topups']:,} "
              f"top-ups ({c['webhook_topups']:,} by webhook), {c['flagged']:,} flagged "
              f"{c['flags']} in {record['seconds']:,.0f} s: {done / record['seconds']:,.0f} "
              f"pushed sales/s over {c['pushes']:,} pushes")
        if kind == "pg":  # as measure does: without statistics the audit's joins take minutes
            asyncio.run(_pg_analyze(record["db_url"]))
        ok, seconds = audit(record["db_url"])
        print(f"[{kind}] audit-ledger: {'ok' if ok else 'FAILED'} in {seconds:.1f} s")
    return 0


TARGET_MS = {"sqlite": 250, "pg": 150}
CSV_RATE, CSV_RSS_MB, AUDIT_S, SNAPSHOT_S = 50_000, 50, 60, 1.0


def cmd_measure(args: argparse.Namespace) -> int:
    from benchmarks.year_measure import find_year, run
    from benchmarks.year_seed import ADMIN_EMAIL, ADMIN_PASSWORD

    missed = False
    for kind in kinds(args.db):
        have = recorded(kind, args.suffix)
        if have is None and (school := asyncio.run(find_year(db_url(kind, args.suffix)))):
            have = {"db_url": db_url(kind, args.suffix), "school_id": school, "complete": False,
                    "days_done": "?", "plan": Plan().as_dict(), "last_day": "?",
                    "counts": {k: 0 for k in ("sales", "voids", "rejected", "reversals",
                                              "topups", "flagged")}}
        if have is None:
            print(f"[{kind}] no seeded year: run `year.py seed --db {kind}` first")
            missed = True
            continue
        if not have.get("backdated"):
            # Years seeded before backdating existed: the same fix-up, once.
            asyncio.run(_backdate(have["db_url"], have["school_id"]))
            have["backdated"] = True
            params_file(kind, args.suffix).write_text(json.dumps(have, indent=2))
        if kind == "pg":
            # What autovacuum does after a bulk load in production (it is off on the test
            # server): without statistics the planner guesses a few rows per school.
            asyncio.run(_pg_analyze(have["db_url"]))
        c = have["counts"]
        if not have.get("complete", True):
            print(f"[{kind}] PARTIAL YEAR: seeding stopped after {have['days_done']} of "
                  f"{have['plan']['days']} days (last {have['last_day']}); figures below are "
                  f"for what is there, not the year")
        started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        print(f"\n[{kind}] {started}, load average {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} cores; the year: {c['sales']:,} sales, {c['voids']:,} voids, "
              f"{c['rejected']:,} rejected, {c['reversals']:,} reversals, {c['topups']:,} "
              f"top-ups, {c['flagged']:,} flagged (as the seeder counted them)")
        out = run(have["db_url"], have["school_id"], ADMIN_EMAIL, ADMIN_PASSWORD, args.requests)
        target = TARGET_MS[kind]
        print(f"{'page':<44} {'HTTP':>4} {'p50 ms':>8} {'p95 ms':>8} {'count(*) ms':>11} "
              f"{'rows':>10}  target {target} ms")
        for t in out["pages"]:
            ok = t.status == 200 and t.p95 <= target
            missed |= not ok
            print(f"{t.label[:44]:<44} {t.status:>4} {t.p50:>8.1f} {t.p95:>8.1f} "
                  f"{t.base_p50:>11.1f} {t.base_rows:>10,}  {'PASS' if ok else 'MISS'}")
        csv = out["csv"]
        csv_ok = csv["rate"] >= CSV_RATE and csv["rss_growth"] <= CSV_RSS_MB
        print(f"CSV of a month: {csv['rows']:,} rows ({csv['mb']:.0f} MB, {csv['wire_mb']:.0f} MB "
              f"{csv['encoding']} on the wire) in {csv['seconds']:.2f} s = {csv['rate']:,.0f} "
              f"rows/s, the median of {len(csv['runs'])} runs at "
              f"{', '.join(f'{r:,}' for r in csv['runs'])} (target {CSV_RATE:,}); "
              f"server RSS {csv['rss_start']:.0f} -> peak {csv['rss_peak']:.0f} MB "
              f"(+{csv['rss_growth']:.0f}, target <= {CSV_RSS_MB}; /proc VmRSS of the serve "
              f"process every 20 ms); count(*) {csv['base_ms']:.0f} ms for "
              f"{csv['base_rows']:,} rows  {'PASS' if csv_ok else 'MISS'}")
        ok, seconds = audit(have["db_url"])
        audit_ok = ok and seconds <= AUDIT_S
        print(f"audit-ledger on the year: {'ok' if ok else 'FAILED'} in {seconds:.1f} s "
              f"(target {AUDIT_S} s)  {'PASS' if audit_ok else 'MISS'}")
        snap = out["snapshot"]
        snap_ok = snap["seconds"] <= SNAPSHOT_S
        print(f"new terminal's full snapshot: {snap['wallets']:,} wallets in "
              f"{snap['seconds'] * 1000:.0f} ms (target {SNAPSHOT_S * 1000:.0f} ms)  "
              f"{'PASS' if snap_ok else 'MISS'}")
        missed |= not (csv_ok and audit_ok and snap_ok)
    return 1 if missed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    s = sub.add_parser("seed", help="seed the year (kept for reuse)")
    s.add_argument("--db", choices=("sqlite", "pg", "both"), default="both")
    s.add_argument("--reuse", action="store_true",
                   help="keep a database already seeded with the same parameters")
    s.add_argument("--students", type=int, default=Plan().students)
    s.add_argument("--days", type=int, default=Plan().days)
    s.add_argument("--sales-per-day", type=int, default=Plan().sales_per_day)
    s.add_argument("--suffix", default="", help="seed beside the kept year (e.g. _small)")
    s.set_defaults(run=cmd_seed)
    m = sub.add_parser("measure", help="time every console page on the seeded year")
    m.add_argument("--db", choices=("sqlite", "pg", "both"), default="both")
    m.add_argument("--requests", type=int, default=20)
    m.add_argument("--suffix", default="", help="measure the year seeded with this suffix")
    m.set_defaults(run=cmd_measure)
    args = parser.parse_args()
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
