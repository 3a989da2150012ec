"""Migration 0005 carries a v1 ledger's money over: voids and reversals become refund links,
manual money becomes money operations, payment events are grouped into payments, and the
audit (which now checks every posting has an owner) is clean afterwards.

The v1 data is made by today's code and taken down to 0004 (whose downgrade writes the
``voided_by`` marks back), then up again, so both directions run with data in the tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import command

from shared.protocol import PaymentEvent
from sync_server.ledger import money_ops
from sync_server.ledger.audit import audit
from sync_server.ledger.payments import Policy, apply_event
from sync_server.storage.engine import create_engine
from sync_server.storage.migrate import alembic_config, upgrade
from sync_server.storage.schema import money_ops as money_ops_table
from sync_server.storage.schema import payments, sale_refunds
from tests.admin.conftest import query

from .helpers import enroll, push, sale, void_of


async def test_v1_money_survives_0005_down_and_up(client: Any, demo: dict[str, Any],
                                                  db_url: str) -> None:
    school = demo["schools"][0]
    sid = school["school_id"]
    token = (await enroll(client, school["enrollment_code"]))["device_token"]
    voided, reversed_ = sale(school, 1, wallet=1), sale(school, 2, wallet=2)
    await push(client, token, [voided, reversed_, void_of(voided, 3)])
    engine = create_engine(db_url)
    try:
        await money_ops.run(engine.begin, money_ops.MoneyOp(
            school_id=sid, kind="reversal", wallet_id=school["wallets"][2]["wallet_id"],
            amount=0, idem_key="k1", actor="admin", sale_ref=reversed_["ref"], reason="x"))
        await money_ops.run(engine.begin, money_ops.MoneyOp(
            school_id=sid, kind="topup", wallet_id=school["wallets"][3]["wallet_id"],
            amount=700, idem_key="k2", actor="admin", reason="cash"))
        for event_id, kind, amount in (("e1", "payment.completed", 5000),
                                       ("e2", "refund.completed", 5000),
                                       ("e3", "payment.failed", 900)):
            await apply_event(engine.begin, PaymentEvent(
                event_id=event_id, event_type=kind, reference="R" if kind != "payment.failed"
                else "F", wallet_id=school["wallets"][4]["wallet_id"], amount=amount,
                currency=school["currency"], created_at=datetime.now(UTC)),
                source="webhook", policy=Policy())
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0004"))
        async with engine.connect() as conn:
            marks = dict((await conn.execute(sa.text(
                "SELECT ref, voided_by FROM sales WHERE voided_by IS NOT NULL"))).all())
    finally:
        await engine.dispose()
    assert marks[voided["ref"]] != marks[reversed_["ref"]]
    assert marks[reversed_["ref"]].startswith("reversal:")

    await upgrade(db_url)
    links = {r.sale_ref: r.kind for r in await query(db_url, sa.select(sale_refunds))}
    assert links == {voided["ref"]: "void", reversed_["ref"]: "reversal"}
    kinds = sorted(r.kind for r in await query(db_url, sa.select(money_ops_table.c.kind)
                                                .where(money_ops_table.c.school_id == sid)))
    assert kinds.count("reversal") == 1 and kinds.count("topup") == 1
    states = {r.reference: (r.state, int(r.credited), int(r.debited))
              for r in await query(db_url, sa.select(payments))}
    assert states == {"R": ("refunded", 5000, 5000), "F": ("failed", 0, 0)}
    engine = create_engine(db_url)
    try:
        report = await audit(engine)
    finally:
        await engine.dispose()
    assert report["ok"], report
    # And the refund links still refuse a second refund after the round trip.
    again = await push(client, token, [void_of(reversed_, 4)])
    assert again["results"][0]["code"] == "void_twice"
