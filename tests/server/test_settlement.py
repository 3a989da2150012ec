"""``pos-server reconcile-payments``: a settlement CSV against the ledger (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import utcnow
from shared.protocol import PaymentEvent
from sync_server.ledger.payments import Policy, apply_event
from sync_server.settlement import SettlementError, parse_settlement, read_only
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import payment_events, payments, postings

HEADER = "reference,amount,currency,status,settled_at\n"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sync_server", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(db_url)
    yield eng
    await eng.dispose()


async def gateway_says(engine: AsyncEngine, wallet_id: str, reference: str, amount: int,
                       kind: str = "payment.completed") -> None:
    outcome = await apply_event(engine.begin, PaymentEvent(
        event_id=f"evt_{kind}_{reference}", event_type=kind, reference=reference,
        wallet_id=wallet_id, amount=amount, currency="SAR", created_at=utcnow()),
        source="webhook", policy=Policy())
    assert outcome.status in ("credited", "recorded"), outcome


async def everything(engine: AsyncEngine) -> list[Any]:
    """Every row reconciliation could touch, to show it touched none."""
    async with engine.connect() as conn:
        return [list((await conn.execute(sa.select(t).order_by(*t.primary_key))).all())
                for t in (payments, payment_events, postings)]


async def test_the_report_names_every_difference_and_changes_nothing(
        engine: AsyncEngine, db_url: str, demo: dict[str, Any], tmp_path: Path) -> None:
    w = [x["wallet_id"] for x in demo["schools"][0]["wallets"]]
    await gateway_says(engine, w[0], "ref_before_span", 1000)  # credited before the report
    start = utcnow()
    await gateway_says(engine, w[1], "ref_match", 5000)
    await gateway_says(engine, w[2], "ref_split", 900)
    await gateway_says(engine, w[3], "ref_mismatch", 3000)
    await gateway_says(engine, w[4], "ref_not_settled", 2000)
    await gateway_says(engine, w[5], "ref_refunded_line", 800)
    await gateway_says(engine, w[6], "ref_pending", 4000, "payment.pending")
    end = start + timedelta(days=1)
    stamp = start.isoformat()
    (tmp_path / "settlement.csv").write_text(
        HEADER
        + f"ref_match,5000,SAR,completed,{stamp}\n"
        + f"ref_split,400,SAR,settled,{stamp}\n"
        + f"ref_split,500,SAR,SETTLED,{stamp}\n"
        + f"ref_mismatch,3500,SAR,completed,{stamp}\n"
        + f"ref_refunded_line,800,SAR,refunded,{stamp}\n"
        + f"ref_pending,4000,SAR,completed,{stamp}\n"
        + f"ref_ghost,6000,SAR,completed,{end.isoformat()}\n"
        + f"ref_failed_elsewhere,100,SAR,failed,{stamp}\n\n")
    before = await everything(engine)

    out = run("reconcile-payments", "--db", db_url, "--settlement",
              str(tmp_path / "settlement.csv"), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["matched"] == 2  # ref_match, and ref_split's two lines added up
    assert [(m["reference"], m["amount"], m["ledger_state"], m["lines"])
            for m in report["missing_in_ledger"]] == [("ref_ghost", 6000, None, [8]),
                                                      ("ref_pending", 4000, "pending", [7])]
    assert [(m["reference"], m["amount"], m["state"], m["settlement_statuses"])
            for m in report["missing_in_settlement"]] == [
        ("ref_not_settled", 2000, "completed", []),
        ("ref_refunded_line", 800, "completed", ["refunded"])]
    assert report["missing_in_settlement"][0]["wallet_id"] == w[4]
    assert [(m["reference"], m["settlement_amount"], m["ledger_amount"], m["lines"])
            for m in report["amount_mismatch"]] == [("ref_mismatch", 3500, 3000, [5])]
    assert await everything(engine) == before

    human = run("reconcile-payments", "--db", db_url, "--settlement",
                str(tmp_path / "settlement.csv"))
    assert human.returncode == 0, human.stderr
    assert human.stdout.splitlines()[0] == ("2 matched, 2 missing in the ledger, 2 missing in "
                                            "the settlement, 1 amount mismatch(es)")
    # Amounts as people read them, not minor units (issue 12); --json keeps the integers.
    assert "missing in ledger: ref_ghost 60.00 SAR" in human.stdout
    assert "missing in settlement: ref_refunded_line 8.00 SAR" in human.stdout
    assert "amount mismatch: ref_mismatch settled 35.00 SAR, ledger 30.00 SAR" in human.stdout
    assert " 6000" not in human.stdout and " 3500" not in human.stdout


@pytest.mark.parametrize(("body", "error"), [
    ("reference,amount,status\nr,1,completed\n",
     "settlement.csv: missing column(s) currency, settled_at; the header must name "
     "reference,amount,currency,status,settled_at"),
    (HEADER + "r1,100,SAR,completed,2026-11-22T10:00:00+03:00\n"
              "r2,12.50,SAR,completed,2026-11-22T10:00:00+03:00\n",
     "settlement.csv line 3: amount '12.50' is not a whole number of minor units"),
])
def test_a_bad_report_is_one_line_naming_the_line(body: str, error: str, tmp_path: Path) -> None:
    path = tmp_path / "settlement.csv"
    path.write_text(body)
    # Refused before the database is opened: this database does not even exist.
    out = run("reconcile-payments", "--db", f"sqlite:///{tmp_path / 'none.db'}",
              "--settlement", str(path), "--json")
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr == f"pos-server: {error}\n"


@pytest.mark.parametrize(("line", "error"), [
    ("r,100,SAR,completed", "line 2: 4 field(s), the header has 5 or more"),
    (",100,SAR,completed,2026-11-22T10:00:00Z", "line 2: empty reference"),
    ("r,abc,SAR,completed,2026-11-22T10:00:00Z", "line 2: amount 'abc' is not a whole number"),
    ("r,0,SAR,completed,2026-11-22T10:00:00Z", "line 2: a settled amount must be positive"),
    ("r,100,sar,completed,2026-11-22T10:00:00Z", "line 2: currency 'sar' is not a code"),
    ("r,100,SAR,,2026-11-22T10:00:00Z", "line 2: empty status"),
    ("r,100,SAR,completed,22/11/2026", "line 2: settled_at '22/11/2026' is not an RFC 3339"),
    ("r,100,SAR,completed,2026-11-22T10:00:00", "line 2: settled_at '2026-11-22T10:00:00' has "
                                                "no UTC offset"),
])
def test_every_field_is_checked(line: str, error: str) -> None:
    with pytest.raises(SettlementError) as refused:
        parse_settlement([HEADER, line + "\n"], "s.csv")
    assert str(refused.value).startswith(f"s.csv {error}")
    assert "\n" not in str(refused.value)


def test_refunds_may_be_negative_and_extra_columns_are_ignored() -> None:
    lines = parse_settlement(["Fee,Reference,Amount,Currency,Status,Settled_At\n",
                              "12,r1,-500,SAR,refunded,2026-11-22T10:00:00+03:00\n"], "s.csv")
    assert [(ln.reference, ln.amount, ln.status) for ln in lines] == [("r1", -500, "refunded")]


async def test_the_comparison_reads_through_a_connection_that_cannot_write(
        engine: AsyncEngine) -> None:
    async with read_only(engine) as conn:
        with pytest.raises(sa.exc.DBAPIError) as refused:
            await conn.execute(sa.update(payments).values(state="failed"))
    assert "read" in str(refused.value).lower()  # readonly database, read-only transaction
