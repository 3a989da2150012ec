"""Two faults the money property test and race test found, kept as regressions.

- A double click: the same admin operation (same form key) sent twice at the same moment. On
  PostgreSQL the second waited on the row lock and then failed the business check ("already
  reversed", "already settled") instead of replaying the first outcome.
- A payment whose first event was in another currency: the completion in the school's currency
  was credited, and a refund in the other currency was then debited from the wallet.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from shared.protocol import PaymentEvent, Sale
from sync_server.ledger import money_ops
from sync_server.ledger.payments import Policy, apply_event, credit_held
from sync_server.ledger.sales import apply_push
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import devices, wallets

from .helpers import sale


async def _outcome(call: Any) -> str:
    try:
        result = await call
    except money_ops.OpRefused as exc:
        return f"refused {exc.code}"
    return "replay" if result.replay else "applied"


async def test_a_double_clicked_operation_replays_instead_of_being_refused(
        db_url: str, demo: dict[str, Any]) -> None:
    school = demo["schools"][0]
    sid = school["school_id"]
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(devices).values(
                device_id="dev_twin", school_id=sid, name="x", token_hash="0" * 64,
                status="active", enrolled_at=datetime.now(UTC)))
        outcomes = []
        for n in range(1, 6):
            body = sale(school, n, wallet=0)
            await apply_push(engine, sid, "dev_twin", [Sale.model_validate_json(json.dumps(body))])
            op = money_ops.MoneyOp(school_id=sid, kind="reversal", wallet_id=body["wallet_id"],
                                   amount=0, idem_key=f"form:twin{n}", actor="adm", reason="r",
                                   sale_ref=body["ref"])
            outcomes.append(sorted(await asyncio.gather(
                _outcome(money_ops.run(engine.begin, op)),
                _outcome(money_ops.run(engine.begin, op)))))
        for n in range(5):  # and a held payment credited by a double click
            wallet = school["wallets"][1 + n]["wallet_id"]
            await apply_event(engine.begin, PaymentEvent(
                event_id=f"big{n}", event_type="payment.completed", reference=f"R{n}",
                wallet_id=wallet, amount=9_000, currency=school["currency"],
                created_at=datetime.now(UTC)), source="webhook", policy=Policy(hold_above=100))

            def credit(n: int = n, wallet: str = wallet) -> Any:
                return credit_held(engine.begin, school_id=sid, event_id=f"big{n}",
                                   wallet_id=wallet, idem_key=f"form:credit{n}", actor="adm",
                                   reason="ok")
            outcomes.append(sorted(await asyncio.gather(_outcome(credit()), _outcome(credit()))))
    finally:
        await engine.dispose()
    assert outcomes == [["applied", "replay"]] * 10


async def test_a_refund_in_another_currency_is_never_debited(db_url: str,
                                                             demo: dict[str, Any]) -> None:
    school = demo["schools"][0]
    wallet = school["wallets"][7]["wallet_id"]
    engine = create_engine(db_url)

    async def send(event_id: str, kind: str, currency: str) -> str:
        out = await apply_event(engine.begin, PaymentEvent(
            event_id=event_id, event_type=kind, reference="pay_x", wallet_id=wallet,
            amount=5000, currency=currency, created_at=datetime.now(UTC)),
            source="webhook", policy=Policy())
        return f"{out.status} {out.code}"

    try:
        async with engine.connect() as conn:
            before = (await conn.execute(sa.select(wallets.c.balance)
                                         .where(wallets.c.wallet_id == wallet))).scalar_one()
        answers = [await send("e1", "payment.pending", "USD"),
                   await send("e2", "payment.completed", school["currency"]),
                   await send("e3", "refund.completed", "USD")]
        async with engine.connect() as conn:
            after = (await conn.execute(sa.select(wallets.c.balance)
                                        .where(wallets.c.wallet_id == wallet))).scalar_one()
    finally:
        await engine.dispose()
    assert answers == ["recorded None", "held currency_changed", "held refund_without_credit"]
    assert after == before
