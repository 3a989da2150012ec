"""The restore drill, on SQLite and on PostgreSQL: the fleet is the server's last backup.

Two tills sell and sync against a real ``pos-server serve`` process; ``pos-server backup``
copies the database while it serves; the tills sell and sync more (those sales are not in the
backup); the server stops and its database is destroyed (file deleted / database dropped);
``pos-server restore`` loads the backup into a new empty database; the server starts on it at
the same address; the tills sync again. Every sale recorded on a till must then be in the
ledger exactly once, every balance must be what the tills' own records say, and
``audit-ledger`` must be clean.
"""

from __future__ import annotations

import asyncio
import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from sync_server.cli import main
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import sales, wallets
from terminal.core import Terminal
from tests.conftest import DatabaseFactory, _pg_exec, free_port

from .conftest_helpers import new_code
from .serve_process import Ran, serve


def pos_server(*args: str) -> Ran:
    """``pos-server ARGS`` in this process (the same ``main`` the console script runs): a
    new Python per command cost seconds each on a loaded machine."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return Ran(code, out.getvalue(), err.getvalue())


async def _ledger(db_url: str) -> tuple[dict[str, list[str]], dict[str, int]]:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.select(sales.c.ref, sales.c.status))).all()
            balances = {r.wallet_id: r.balance for r in await conn.execute(
                sa.select(wallets.c.wallet_id, wallets.c.balance))}
    finally:
        await engine.dispose()
    by_ref: dict[str, list[str]] = {}
    for ref, status in rows:
        by_ref.setdefault(ref, []).append(status)
    return by_ref, balances


def _sell_round(tills: list[Terminal], school: dict[str, Any], start: int, n: int) -> None:
    """``n`` sales on each till, spread over several wallets and products."""
    payers = [w for w in school["wallets"]
              if w["daily_limit"] is None and w["balance"] >= 5000 and w["status"] == "active"
              and not any(w["restrictions"].values())][:6]
    cashier = school["cashiers"][0]["cashier_id"]
    for i in range(start, start + n):
        for t, till in enumerate(tills):
            payer = payers[(i + t) % len(payers)]
            product = school["products"][(i + 2 * t) % 3]
            till.record_sale(cashier, [(product["product_id"], 1 + i % 2)],
                             uid=payer["credential_uid"])


def _sync_all(tills: list[Terminal]) -> list[Any]:
    reports = [till.sync_once() for till in tills]
    for report in reports:
        assert report.completed, report.error
    return reports


def _destroy(db_factory: DatabaseFactory, db_url: str) -> None:
    if db_factory.kind == "sqlite":
        path = Path(db_url.removeprefix("sqlite:///"))
        for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            name.unlink(missing_ok=True)
    else:
        database = db_url.rsplit("/", 1)[1]
        asyncio.run(_pg_exec(f'DROP DATABASE "{database}" WITH (FORCE)'))


def test_restore_drill_every_sale_on_a_till_applied_exactly_once(
        db_factory: DatabaseFactory, tmp_path: Path) -> None:
    db_url = db_factory.new()
    school = json.loads(json.dumps(db_factory.demo))["schools"][0]
    port = free_port()
    backup = tmp_path / ("drill.db" if db_factory.kind == "sqlite" else "drill.dump")
    (tmp_path / "before").mkdir()
    (tmp_path / "after").mkdir()

    tills: list[Terminal] = []
    try:
        _drill(db_factory, db_url, school, tills, port, backup, tmp_path)
    finally:
        for till in tills:
            till.close()


def _drill(db_factory: DatabaseFactory, db_url: str, school: dict[str, Any],
           tills: list[Terminal], port: int, backup: Path, tmp_path: Path) -> None:
    start_balances = {w["wallet_id"]: w["balance"] for w in school["wallets"]}
    with serve(db_url, tmp_path / "before", port=port) as server:
        for n in (1, 2):
            till = Terminal(tmp_path / f"till{n}")
            code = asyncio.run(new_code(db_url, school["school_id"]))
            assert till.enroll(server.url, code, f"Counter {n}").first_snapshot.completed
            tills.append(till)
        _sell_round(tills, school, 0, 6)
        _sync_all(tills)
        # a void of a synced sale, so refs of both kinds cross the backup
        tills[0].void(tills[0].history()[-1].ref, school["cashiers"][1]["cashier_id"])
        _sync_all(tills)
        acked_at_backup = [till.status()["acked_seq"] for till in tills]

        taken = pos_server("backup", "--db", db_url, "--to", str(backup), "--json")
        assert taken.returncode == 0, taken.stderr
        info = json.loads(taken.stdout)
        assert info["database"] == db_factory.kind and info["bytes"] == backup.stat().st_size

        _sell_round(tills, school, 6, 5)    # synced, then lost with the database
        tills[1].void(tills[1].history()[-1].ref, school["cashiers"][0]["cashier_id"])
        _sync_all(tills)
        _sell_round(tills, school, 11, 2)   # still queued on the tills when the server dies
        assert all(till.status()["queued"] == 2 for till in tills)

    _destroy(db_factory, db_url)
    new_url = db_factory.new_empty()
    restored = pos_server("restore", "--db", new_url, "--from", str(backup), "--json")
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["audit_ok"] is True

    with serve(new_url, tmp_path / "after", port=port):
        reports = _sync_all(tills)
        assert [r.refill_from_seq for r in reports] == acked_at_backup
        for till in tills:
            status = till.status()
            assert status["queued"] == 0 and status["refilling"] is False
            assert status["acked_seq"] == status["last_seq"]
        _sync_all(tills)  # a second cycle finds nothing lost: no refill again
        assert all(till.status()["refill_from_seq"] is None for till in tills)

    by_ref, balances = asyncio.run(_ledger(new_url))
    recorded = [row for till in tills for row in till.history(limit=10_000)]
    assert len(recorded) == 2 * (6 + 5 + 2) + 2
    for row in recorded:  # every sale of every till, applied, exactly once
        assert by_ref.get(row.ref) == ["applied"], row
    assert len(by_ref) == len(recorded)  # and nothing else
    expected = dict(start_balances)
    for row in recorded:
        expected[row.wallet_id] -= row.total if row.kind == "sale" else -row.total
    assert {w: balances[w] for w in expected} == expected
    for till in tills:  # and the tills see the same balances after their full snapshot
        for wallet_id in {row.wallet_id for row in recorded}:
            assert till.balance_estimate(wallet_id) == expected[wallet_id]

    audit = pos_server("audit-ledger", "--db", new_url, "--json")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    report = json.loads(audit.stdout)
    assert report["ok"] is True
    assert all(not s["missing_seqs"] for s in report["schools"])
