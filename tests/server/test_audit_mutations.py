"""Each check of ``audit-ledger`` catches the fault it is for.

Every test builds a sound ledger through the real paths (sales pushed over HTTP, a void, an
admin reversal, gateway events), sees the audit pass, then plants one fault by writing rows
directly, as a bug or a hand-edited database would, and sees the audit fail on exactly that
check. Balances are kept consistent with the planted postings where a fault is about events,
so it is the event checks, not the balance check, that must notice.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.ids import new_id
from shared.protocol import PaymentEvent
from sync_server.ledger import money_ops
from sync_server.ledger.accounts import REVENUE, TOPUP_CLEARING, system_account
from sync_server.ledger.audit import audit
from sync_server.ledger.payments import Policy, apply_event
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import money_ops as money_ops_table
from sync_server.storage.schema import payment_events, postings, sale_refunds, sales, wallets
from sync_server.storage.schema_rollups import sales_item_days, wallet_day_nets

from .helpers import enroll, push, sale, void_of

Plant = Callable[[AsyncConnection, dict[str, Any]], Awaitable[None]]


async def _sound_ledger(client: Any, demo: dict[str, Any], db_url: str) -> dict[str, Any]:
    """Sales, a void, a reversal and a credited-then-partly-refunded payment, all through the
    real code. Returns the facts the plants need."""
    school = demo["schools"][0]
    sid = school["school_id"]
    token = (await enroll(client, school["enrollment_code"]))["device_token"]
    kept, voided, reversed_ = (sale(school, 1, wallet=1), sale(school, 2, wallet=1),
                               sale(school, 3, wallet=2))
    out = await push(client, token, [kept, voided, reversed_, void_of(voided, 4)])
    assert [r["status"] for r in out["results"]] == ["applied"] * 4
    engine = create_engine(db_url)
    try:
        await money_ops.run(engine.begin, money_ops.MoneyOp(
            school_id=sid, kind="reversal", wallet_id=school["wallets"][2]["wallet_id"],
            amount=0, idem_key="t:rev", actor="test", sale_ref=reversed_["ref"]))
        wallet = school["wallets"][3]["wallet_id"]
        for event_id, kind, amount in (("e1", "payment.completed", 5000),
                                       ("e2", "refund.completed", 2000)):
            await apply_event(engine.begin, PaymentEvent(
                event_id=event_id, event_type=kind, reference="ref-A", wallet_id=wallet,
                amount=amount, currency=school["currency"], created_at=datetime.now(UTC)),
                source="webhook", policy=Policy())
        report = await audit(engine)
    finally:
        await engine.dispose()
    assert report["ok"], report
    return {"school_id": sid, "kept": kept, "voided": voided, "reversed": reversed_,
            "wallet": school["wallets"][1]["wallet_id"], "paid_wallet": wallet}


async def _post(conn: AsyncConnection, sid: str, kind: str, source: str, target: str,
                amount: int, wallet: str, sale_ref: str | None = None) -> str:
    """A posting written by hand, with the wallet's cached balance kept in step."""
    pid = new_id("pst")
    now = datetime.now(UTC)
    await conn.execute(sa.insert(postings).values(
        posting_id=pid, school_id=sid, kind=kind, from_account=source, to_account=target,
        amount=amount, sale_ref=sale_ref, occurred_at=now, posted_at=now))
    delta = amount if target == wallet else -amount
    await conn.execute(sa.update(wallets).where(wallets.c.wallet_id == wallet)
                       .values(balance=wallets.c.balance + delta))
    return pid


async def _second_reversal(conn: AsyncConnection, f: dict[str, Any]) -> None:
    """The voided sale reversed again by an admin path that skipped the refund link."""
    sid, total = f["school_id"], f["voided"]["total"]
    pid = await _post(conn, sid, "reversal", system_account(sid, REVENUE), f["wallet"], total,
                      f["wallet"], f["voided"]["ref"])
    await conn.execute(sa.insert(money_ops_table).values(
        op_id=new_id("op"), school_id=sid, idem_key="bad", content_hash="x", kind="reversal",
        wallet_id=f["wallet"], amount=total, posting_id=pid, sale_ref=f["voided"]["ref"],
        created_at=datetime.now(UTC)))


async def _unowned(conn: AsyncConnection, f: dict[str, Any]) -> None:
    """Money put on a wallet with no business event behind it."""
    sid = f["school_id"]
    await _post(conn, sid, "adjustment", system_account(sid, "adjustments"), f["wallet"], 100,
                f["wallet"])


async def _shared(conn: AsyncConnection, f: dict[str, Any]) -> None:
    """A money operation claiming the posting of a sale."""
    txn = (await conn.execute(sa.select(sales.c.txn_id).where(
        sales.c.ref == f["kept"]["ref"]))).scalar_one()
    await conn.execute(sa.insert(money_ops_table).values(
        op_id=new_id("op"), school_id=f["school_id"], idem_key="bad2", content_hash="x",
        kind="adjustment", wallet_id=f["wallet"], amount=-1, posting_id=txn,
        created_at=datetime.now(UTC)))


async def _credited_twice(conn: AsyncConnection, f: dict[str, Any]) -> None:
    """A second delivery under a new event id credited the same reference again."""
    sid, wallet = f["school_id"], f["paid_wallet"]
    pid = await _post(conn, sid, "topup", system_account(sid, TOPUP_CLEARING), wallet, 5000,
                      wallet)
    row = dict((await conn.execute(sa.select(payment_events).where(
        payment_events.c.event_id == "e1"))).one()._mapping)
    row.update(event_id="e1-again", txn_id=pid, content_hash="y")
    await conn.execute(sa.insert(payment_events).values(**row))


async def _over_refunded(conn: AsyncConnection, f: dict[str, Any]) -> None:
    """A refund taking back more than the payment credited (5000 credited, 2000 refunded)."""
    sid, wallet = f["school_id"], f["paid_wallet"]
    pid = await _post(conn, sid, "refund", wallet, system_account(sid, TOPUP_CLEARING), 3001,
                      wallet)
    row = dict((await conn.execute(sa.select(payment_events).where(
        payment_events.c.event_id == "e2"))).one()._mapping)
    row.update(event_id="e3", amount=3001, txn_id=pid, content_hash="z")
    await conn.execute(sa.insert(payment_events).values(**row))


async def _link_without_refund(conn: AsyncConnection, f: dict[str, Any]) -> None:
    """A sale marked refunded whose money never went back."""
    await conn.execute(sa.insert(sale_refunds).values(
        school_id=f["school_id"], sale_ref=f["kept"]["ref"], kind="void", void_ref="nothing",
        amount=f["kept"]["total"], refunded_at=datetime.now(UTC)))


async def _rollup_edited(conn: AsyncConnection, f: dict[str, Any]) -> None:
    """A breakdown rollup row off by one item (the reports would show it)."""
    await conn.execute(sa.update(sales_item_days).where(
        sales_item_days.c.school_id == f["school_id"])
        .values(quantity=sales_item_days.c.quantity + 1))


async def _rollup_lost(conn: AsyncConnection, f: dict[str, Any]) -> None:
    """A wallet's day net gone: its balances at past dates would be wrong."""
    await conn.execute(sa.delete(wallet_day_nets).where(
        wallet_day_nets.c.wallet_id == f["wallet"]))


async def _rollup_invented(conn: AsyncConnection, f: dict[str, Any]) -> None:
    """A day net no posting explains."""
    await conn.execute(sa.insert(wallet_day_nets).values(
        wallet_id=f["paid_wallet"], day="2001-01-01", school_id=f["school_id"], net=700))


@pytest.mark.parametrize(("plant", "check"), [
    (_rollup_edited, "rollup_missing"),
    (_rollup_lost, "rollup_missing"),
    (_rollup_invented, "rollup_extra"),
    (_second_reversal, "refund_faults"),
    (_link_without_refund, "refund_faults"),
    (_unowned, "unowned_postings"),
    (_shared, "shared_postings"),
    (_credited_twice, "payment_faults"),
    (_over_refunded, "payment_faults"),
], ids=lambda v: getattr(v, "__name__", v).strip("_"))
async def test_audit_catches_a_planted_fault(client: Any, demo: dict[str, Any], db_url: str,
                                             plant: Plant, check: str) -> None:
    facts = await _sound_ledger(client, demo, db_url)
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await plant(conn, facts)
        report = await audit(engine)
    finally:
        await engine.dispose()
    assert report["ok"] is False
    json.dumps(report)  # `audit-ledger --json` prints it (PostgreSQL's SUMs are Decimals)
    school = next(s for s in report["schools"] if s["school_id"] == facts["school_id"])
    assert school[check], school
    # Balances still equal their postings: the event check, not the sums, caught it.
    assert school["balance_mismatches"] == [] and school["postings_sum"] == 0
