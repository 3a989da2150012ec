"""Property test: every way money moves besides a plain sale, in random order, on both databases.

A hypothesis state machine grows one database with gateway payment events for a handful of
payment references (every v1.1 event type, in any order, late, with other amounts or wallets,
re-sent verbatim, re-sent under the same ``event_id`` with a changed body, sent twice at the
same moment), terminal sales and voids pushed through ``apply_push``, admin reversals of sales
(``money_ops``), and admin settlements of held events (``credit_held``, ``mark_for_refund``),
each operation also sent twice. A small model of the money predicts what each step may do.
After every step, besides ``audit(engine)["ok"]``, directly in SQL:

- each payment (reference) is credited at most once, and its refunds plus chargebacks never
  take back more than it credited; ``payments.credited``/``debited`` agree with the postings;
- each sale is refunded at most once (a void or a reversal), never by more than its total,
  and ``sale_refunds`` holds exactly those refunds;
- every payment event sent has exactly one stored outcome row (and every changed body one
  kept conflict); an outcome that moved money names a posting of that amount, and no other does;
- every wallet's balance equals the sum of its postings and the model's balance.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import sqlalchemy as sa
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from shared.protocol import PaymentEvent, Sale
from sync_server.ledger import money_ops
from sync_server.ledger.audit import audit
from sync_server.ledger.money_ops import MoneyOp, OpOutcome, OpRefused
from sync_server.ledger.payments import (
    EventOutcome,
    Policy,
    apply_event,
    credit_held,
    event_hash,
    mark_for_refund,
)
from sync_server.ledger.sales import apply_push
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import devices, payment_events, payments, wallets
from sync_server.storage.schema import money_ops as money_ops_table
from tests.conftest import DatabaseFactory

from .helpers import sale, void_of

T = TypeVar("T")
HOLD_ABOVE = 10_000
POLICY = Policy(hold_above=HOLD_ABOVE)
KINDS = ("payment.pending", "payment.completed", "payment.failed", "refund.completed",
         "refund.failed", "chargeback.created")
# (reference, index of its usual wallet, usual amount): the third is above the hold ceiling,
# the last has no reference at all (every such event is a payment of its own).
REFS = (("pay_a", 0, 5000), ("pay_b", 1, 3000), ("pay_c", 0, 12_000), ("", 1, 2000))
MOVES = {"credited": 1, "debited": -1}
# What each event type may become (a refund or chargeback never credits, and so on).
MAY_BE = {"payment.pending": {"recorded"}, "payment.failed": {"recorded", "held"},
          "refund.failed": {"recorded"}, "payment.completed": {"credited", "recorded", "held"},
          "refund.completed": {"debited", "held"}, "chargeback.created": {"debited", "held"}}
RIYADH = timezone(timedelta(hours=3))
# One new gateway event: (ref, type, amount, wallet, currency, minutes old, sent twice at once).
EVENT = st.tuples(
    st.integers(0, len(REFS) - 1),
    st.sampled_from((*KINDS, "payment.completed", "payment.completed", "refund.completed")),
    st.sampled_from(["base", "base", "half", "double"]),
    st.sampled_from(["own"] * 6 + ["other", "foreign", "unknown"]),
    st.sampled_from(["SAR"] * 7 + ["USD"]), st.integers(0, 600), st.booleans())


@dataclass
class Pay:
    """A payment as the model knows it: by reference, or by event for an empty reference."""

    credited: int = 0
    debited: int = 0
    wallet: str | None = None   # where its credit went
    failed: bool = False        # a payment.failed was recorded while nothing was credited


@dataclass
class Sent:
    body: dict[str, Any]
    digest: str
    outcome: EventOutcome


@dataclass
class Sold:
    body: dict[str, Any]
    refunded: str | None = None  # "void" | "reversal"


@dataclass
class Model:
    balances: dict[str, int]
    pays: dict[str, Pay] = field(default_factory=dict)
    events: dict[str, Sent] = field(default_factory=dict)          # first body per event_id
    bodies: list[dict[str, Any]] = field(default_factory=list)     # every body sent
    conflicts: set[tuple[str, str]] = field(default_factory=set)   # (event_id, digest)
    sales: list[Sold] = field(default_factory=list)
    voids: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    reversals: list[tuple[MoneyOp, OpOutcome]] = field(default_factory=list)
    credits: list[tuple[dict[str, Any], OpOutcome]] = field(default_factory=list)
    seeded_ops: int = 0                                             # the demo's opening balances


async def gather(*aws: Awaitable[T]) -> list[T]:
    """``asyncio.gather`` inside the loop: the operations start at the same moment."""
    return list(await asyncio.gather(*aws))


def pay_key(body: dict[str, Any]) -> str:
    return body["reference"] or "event:" + body["event_id"]


def parsed(body: dict[str, Any]) -> PaymentEvent:
    return PaymentEvent.model_validate_json(json.dumps(body))


def wire_sale(body: dict[str, Any]) -> Sale:
    return Sale.model_validate_json(json.dumps(body))


class MoneyMachine(RuleBasedStateMachine):
    def __init__(self, factory: DatabaseFactory) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.engine = create_engine(factory.new())
        a, b = factory.demo["schools"]
        self.school, self.schools = a, {a["school_id"]: a, b["school_id"]: b}
        # Wallets 0 and 1 of school A take sales and payments; school B's first, payments.
        self.wallet_ids = [a["wallets"][0]["wallet_id"], a["wallets"][1]["wallet_id"],
                           b["wallets"][0]["wallet_id"]]
        self.school_of = {self.wallet_ids[0]: a["school_id"], self.wallet_ids[1]: a["school_id"],
                          self.wallet_ids[2]: b["school_id"]}
        self.ids = itertools.count(1)
        self.seq = 0
        self.device_id = "dev_prop_" + factory.kind
        balances, seeded_ops = self.run(self._setup())
        self.model = Model(balances, seeded_ops=seeded_ops)

    def run(self, coro: Awaitable[T]) -> T:
        return self.loop.run_until_complete(coro)  # type: ignore[arg-type]

    def teardown(self) -> None:
        self.run(self.engine.dispose())
        self.loop.close()

    async def _setup(self) -> tuple[dict[str, int], int]:
        now = datetime.now(UTC)
        async with self.engine.begin() as conn:
            await conn.execute(sa.insert(devices).values(
                device_id=self.device_id, school_id=self.school["school_id"], name="Prop",
                token_hash="0" * 64, status="active", enrolled_at=now))
            rows = await conn.execute(sa.select(wallets.c.wallet_id, wallets.c.balance)
                                      .where(wallets.c.wallet_id.in_(self.wallet_ids)))
            ops = (await conn.execute(sa.select(sa.func.count()).select_from(money_ops_table)))
            return {r.wallet_id: int(r.balance) for r in rows}, int(ops.scalar_one())

    def _tx(self) -> Any:
        return self.engine.begin()

    # ------------------------------------------------------------ gateway events

    def _event(self, ref: int, kind: str, amount: str, wallet: str, currency: str,
               age: int) -> dict[str, Any]:
        reference, wallet_index, base = REFS[ref]
        wallet_id = {"own": self.wallet_ids[wallet_index],
                     "other": self.wallet_ids[1 - wallet_index],
                     "foreign": self.wallet_ids[2], "unknown": "wal_nobody"}[wallet]
        value = {"base": base, "half": base // 2, "double": base * 2}[amount]
        created = datetime.now(UTC) - timedelta(minutes=age)
        return {"event_id": f"evt_{next(self.ids)}", "event_type": kind, "reference": reference,
                "wallet_id": wallet_id, "amount": value, "currency": currency,
                "created_at": created.isoformat()}

    def _expect_first(self, body: dict[str, Any], out: EventOutcome) -> None:
        """A first delivery: what it may do, and the model's money after it."""
        assert not out.replay and out.event_id == body["event_id"], out
        event(f"{body['event_type']}: {out.status} {out.code or ''}".strip())
        assert out.status in MAY_BE[body["event_type"]], (body, out)
        pay = self.model.pays.setdefault(pay_key(body), Pay())
        kind, amount, wallet_id = body["event_type"], body["amount"], body["wallet_id"]
        if out.status == "credited":
            assert kind == "payment.completed"
            assert body["reference"] and body["currency"] == "SAR" and amount <= HOLD_ABOVE
            assert pay.credited == 0, "a payment is credited at most once"
            assert not pay.failed, "a completion after a failure is held, never credited"
            pay.credited, pay.wallet = amount, wallet_id
        elif out.status == "debited":
            assert pay.credited - pay.debited >= amount, "refunds within what was credited"
            assert wallet_id == pay.wallet
            assert body["currency"] == "SAR", "taken back in the currency that was credited"
            pay.debited += amount
        elif kind == "payment.completed" and (
                not body["reference"] or body["wallet_id"] == "wal_nobody"
                or body["currency"] != "SAR" or (pay.failed and pay.credited == 0)):
            assert out.status == "held", (body, out)
        if kind == "payment.failed" and out.status == "recorded" and pay.credited == 0:
            pay.failed = True
        if out.status in MOVES:
            self.model.balances[wallet_id] += MOVES[out.status] * amount
            assert out.balance_after == self.model.balances[wallet_id], (body, out)
        else:
            assert out.balance_after is None, out

    def _deliver(self, body: dict[str, Any], *, together: bool = False) -> None:
        wire = parsed(body)
        digest = event_hash(wire)
        first = self.model.events.get(body["event_id"])
        if together:
            pair = self.run(gather(
                apply_event(self._tx, wire, source="webhook", policy=POLICY),
                apply_event(self._tx, wire, source="webhook", policy=POLICY)))
            outs = sorted(pair, key=lambda o: o.replay)
        else:
            outs = [self.run(apply_event(self._tx, wire, source="webhook", policy=POLICY))]
        self.model.bodies.append(body)
        for n, out in enumerate(outs):
            if first is None:
                first = Sent(body, digest, out)
                self.model.events[body["event_id"]] = first
                self._expect_first(body, out)
            elif first.digest == digest:  # a replay answers the first outcome again
                assert out.replay, out
                assert out == EventOutcome(**{**vars_of(first.outcome), "replay": True}), (
                    body, out, first.outcome)
            else:
                seen = (body["event_id"], digest) in self.model.conflicts
                assert out.status == "conflict" and out.replay == (seen or n > 0), out
                self.model.conflicts.add((body["event_id"], digest))

    @initialize(events=st.lists(EVENT, min_size=2, max_size=6),
                sales=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 9)), min_size=1,
                               max_size=3))
    def some_money_first(self, events: list[tuple[Any, ...]],
                         sales: list[tuple[int, int]]) -> None:
        """Start every run with payments and sales to work on."""
        self.gateway_events(events)
        for wallet, product in sales:
            self.terminal_sale(wallet, product, 1, False)

    @rule(events=st.lists(EVENT, min_size=1, max_size=3))
    def gateway_events(self, events: list[tuple[Any, ...]]) -> None:
        """New events, one after another; ``together``: each delivered twice at once."""
        for ref, kind, amount, wallet, currency, age, together in events:
            self._deliver(self._event(ref, kind, amount, wallet, currency, age),
                          together=together)

    @precondition(lambda self: self.model.events)
    @rule(pick=st.integers(0, 10**6), change=st.sampled_from(
        ["verbatim"] * 3 + ["amount", "type", "wallet", "time", "reference", "offset"]))
    def event_resent(self, pick: int, change: str) -> None:
        """An earlier delivery again: verbatim (any earlier body, conflicting ones too), or
        its first body with one thing changed under the same event_id."""
        if change == "verbatim":
            self._deliver(self.model.bodies[pick % len(self.model.bodies)])
            return
        sent = list(self.model.events.values())[pick % len(self.model.events)]
        body = dict(sent.body)
        if change == "amount":
            body["amount"] += 1
        elif change == "type":
            body["event_type"] = KINDS[(KINDS.index(body["event_type"]) + 1) % len(KINDS)]
        elif change == "wallet":
            body["wallet_id"] = next(w for w in self.wallet_ids if w != body["wallet_id"])
        elif change == "reference":
            body["reference"] = "pay_other" if body["reference"] != "pay_other" else "pay_a"
        else:
            moment = datetime.fromisoformat(body["created_at"])
            if change == "time":
                moment += timedelta(seconds=1)
            else:  # the same instant written with another offset: the same body
                moment = moment.astimezone(RIYADH)
            body["created_at"] = moment.isoformat()
        self._deliver(body)

    # ------------------------------------------------------------ terminal sales and voids

    def _push(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        outcome = self.run(apply_push(self.engine, self.school["school_id"], self.device_id,
                                      [wire_sale(b) for b in batch]))
        assert len(outcome.results) == len(batch)
        return [dict(r) for r in outcome.results]

    @rule(wallet=st.integers(0, 1), product=st.integers(0, 9), qty=st.integers(1, 3),
          free=st.sampled_from([False] * 5 + [True]))
    def terminal_sale(self, wallet: int, product: int, qty: int, free: bool) -> None:
        self.seq += 1
        body = sale(self.school, self.seq, wallet=wallet, items=(product,), qty=qty)
        if free:  # a zero-total sale: applied (price_mismatch), posts nothing
            body["lines"] = [dict(body["lines"][0], unit_price=0)]
            body["total"] = 0
        [result] = self._push([body])
        assert result["status"] == "applied", result
        self.model.balances[body["wallet_id"]] -= body["total"]
        assert result["balance_after"] == self.model.balances[body["wallet_id"]]
        self.model.sales.append(Sold(body))

    def _expect_void(self, target: Sold, body: dict[str, Any], result: dict[str, Any]) -> None:
        if target.refunded is None:
            assert result["status"] == "applied", result
            target.refunded = "void"
            self.model.balances[body["wallet_id"]] += body["total"]
            assert result["balance_after"] == self.model.balances[body["wallet_id"]]
        else:
            assert (result["status"], result["code"]) == ("rejected", "void_twice"), result
        self.model.voids.append((body, result))

    @precondition(lambda self: self.model.sales)
    @rule(pick=st.integers(0, 10**6), twice_in_batch=st.booleans())
    def terminal_void(self, pick: int, twice_in_batch: bool) -> None:
        target = self.model.sales[pick % len(self.model.sales)]
        batch = []
        for _ in range(2 if twice_in_batch else 1):
            self.seq += 1
            batch.append(void_of(target.body, self.seq))
        for body, result in zip(batch, self._push(batch), strict=True):
            self._expect_void(target, body, result)

    @precondition(lambda self: self.model.voids)
    @rule(pick=st.integers(0, 10**6))
    def terminal_void_resent(self, pick: int) -> None:
        body, first = self.model.voids[pick % len(self.model.voids)]
        [result] = self._push([body])
        assert result["status"] == "duplicate", result
        assert result["original_status"] == first["status"]
        assert (result["code"], result["balance_after"]) == (first["code"],
                                                             first["balance_after"])

    # ------------------------------------------------------------ admin reversals

    def _reversal(self, body: dict[str, Any], key: str | None = None) -> MoneyOp:
        return MoneyOp(school_id=self.school["school_id"], kind="reversal",
                       wallet_id=body["wallet_id"], amount=0,
                       idem_key=key or f"form:rev{next(self.ids)}", actor="adm_prop",
                       reason="charged by mistake", sale_ref=body["ref"])

    def _reverse(self, op: MoneyOp, times: int = 1) -> list[OpOutcome | OpRefused]:
        async def once() -> OpOutcome | OpRefused:
            try:
                return await money_ops.run(self._tx, op)
            except OpRefused as exc:
                return exc
        return self.run(gather(*(once() for _ in range(times))))

    @precondition(lambda self: self.model.sales)
    @rule(pick=st.integers(0, 10**6), of=st.sampled_from(["sale"] * 4 + ["void"]),
          together=st.booleans())
    def admin_reversal(self, pick: int, of: str, together: bool) -> None:
        """``together``: the same form posted twice at the same moment (a double click)."""
        if of == "void" and self.model.voids:
            body = self.model.voids[pick % len(self.model.voids)][0]
            [out] = self._reverse(self._reversal(body))
            assert isinstance(out, OpRefused) and out.code == "not_reversible", out
            return
        sold = self.model.sales[pick % len(self.model.sales)]
        op = self._reversal(sold.body)
        outs = self._reverse(op, 2 if together else 1)
        if sold.refunded is not None:
            assert all(isinstance(o, OpRefused) and o.code == "already_refunded"
                       for o in outs), outs
        elif sold.body["total"] == 0:
            assert all(isinstance(o, OpRefused) and o.code == "zero_amount" for o in outs), outs
        else:
            out = only_first(outs, "already_refunded")
            assert out.amount == sold.body["total"]
            sold.refunded = "reversal"
            self.model.balances[op.wallet_id] += out.amount
            assert out.balance_after == self.model.balances[op.wallet_id]
            self.model.reversals.append((op, out))

    @rule(pick=st.integers(0, 10**6), other_sale=st.booleans())
    def admin_reversal_resent(self, pick: int, other_sale: bool) -> None:
        """The same form again (a re-posted page): a replay; its key with another sale:
        refused, nothing moves. (No precondition: which reversals exist depends on races.)"""
        if not self.model.reversals:
            return
        op, first = self.model.reversals[pick % len(self.model.reversals)]
        if other_sale:
            other = next((s for s in self.model.sales if s.body["ref"] != op.sale_ref), None)
            if other is not None:
                [out] = self._reverse(self._reversal(other.body, op.idem_key))
                assert isinstance(out, OpRefused) and out.code == "key_reused", out
                return
        [out] = self._reverse(op)
        assert isinstance(out, OpOutcome) and out.replay, out
        assert (out.op_id, out.posting_id, out.amount) == (first.op_id, first.posting_id,
                                                           first.amount)

    @precondition(lambda self: self.model.sales)
    @rule(pick=st.integers(0, 10**6))
    def void_and_reversal_together(self, pick: int) -> None:
        """A till's void and an admin's reversal of one sale at the same moment: one refunds."""
        sold = self.model.sales[pick % len(self.model.sales)]
        self.seq += 1
        body = void_of(sold.body, self.seq)
        op = self._reversal(sold.body)

        async def reverse() -> OpOutcome | OpRefused:
            try:
                return await money_ops.run(self._tx, op)
            except OpRefused as exc:
                return exc

        pushed, reversed_ = self.run(gather(
            apply_push(self.engine, self.school["school_id"], self.device_id,
                       [wire_sale(body)]), reverse()))
        result = dict(pushed.results[0])
        event(f"void vs reversal: {result['status']} / {getattr(reversed_, 'code', 'reversed')}")
        if isinstance(reversed_, OpOutcome):
            assert sold.refunded is None and sold.body["total"] > 0
            sold.refunded = "reversal"
            self.model.balances[op.wallet_id] += reversed_.amount
            self.model.reversals.append((op, reversed_))
            assert (result["status"], result["code"]) == ("rejected", "void_twice"), result
            self.model.voids.append((body, result))
        else:
            assert reversed_.code in ("already_refunded", "zero_amount"), reversed_
            self._expect_void(sold, body, result)

    # ------------------------------------------------------------ an admin settles holds

    async def _settlement_facts(self, event_id: str, school_id: str) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            e = (await conn.execute(sa.select(payment_events).where(
                payment_events.c.event_id == event_id))).one()
            credited, state = (await conn.execute(
                sa.select(payments.c.credited, payments.c.state).where(
                    payments.c.payment_id == e.payment_id))).one()
        return {"visible": e.school_id in (None, school_id), "held": e.status == "held",
                "unsettled": e.resolution is None, "resolution": e.resolution,
                "completion": e.event_type == "payment.completed",
                "currency": e.currency == self.schools[school_id]["currency"],
                "uncredited": int(credited) == 0,
                "not_marked_for_refund": state != "refund_requested"}

    def _pick_event(self, pick: int, held: bool, kind: str | None = None) -> Sent:
        """Any event sent, or (``held``) one held for review, of ``kind``, when there is one."""
        pool = [e for e in self.model.events.values() if e.outcome.status == "held"
                and kind in (None, e.body["event_type"])] if held else []
        pool = pool or list(self.model.events.values())
        return pool[pick % len(pool)]

    @precondition(lambda self: self.model.events)
    @rule(pick=st.integers(0, 10**6), held=st.sampled_from([True] * 3 + [False]),
          wallet=st.sampled_from([0, 0, 1, 1, 2]),
          school=st.sampled_from(["wallet's"] * 5 + ["other"]), together=st.booleans())
    def admin_credits_held(self, pick: int, held: bool, wallet: int, school: str,
                           together: bool) -> None:
        sent = self._pick_event(pick, held, "payment.completed")
        wallet_id = self.wallet_ids[wallet]
        school_id = self.school_of[wallet_id]
        if school == "other":
            school_id = next(s for s in self.schools if s != school_id)
        facts = self.run(self._settlement_facts(sent.body["event_id"], school_id))
        args = {"school_id": school_id, "event_id": sent.body["event_id"],
                "wallet_id": wallet_id, "idem_key": f"form:cr{next(self.ids)}",
                "actor": "adm_prop", "reason": "parent's payment, right wallet"}
        outs = self._credit(args, 2 if together else 1)
        refusal = {"visible": "event_unknown", "held": "not_held", "unsettled": "already_settled",
                   "completion": "not_a_credit", "currency": "currency_mismatch",
                   "uncredited": "already_credited",
                   "not_marked_for_refund": "refund_requested"}
        failing = {code for fact, code in refusal.items() if not facts[fact]}
        if self.school_of[wallet_id] != school_id:
            failing.add("wallet_unknown")
        event(f"credit_held: {sorted(failing) or 'credited'}")
        if failing:
            assert all(isinstance(o, OpRefused) and o.code in failing for o in outs), (
                failing, outs)
            return
        out = only_first(outs, "already_settled")
        pay = self.model.pays[pay_key(sent.body)]
        assert pay.credited == 0
        pay.credited, pay.wallet = out.amount, wallet_id
        assert out.amount == sent.body["amount"]
        self.model.balances[wallet_id] += out.amount
        assert out.balance_after == self.model.balances[wallet_id]
        self.model.credits.append((args, out))

    def _credit(self, args: dict[str, Any], times: int) -> list[OpOutcome | OpRefused]:
        async def once() -> OpOutcome | OpRefused:
            try:
                return await credit_held(self._tx, **args)
            except OpRefused as exc:
                return exc
        return list(self.run(gather(*(once() for _ in range(times)))))

    @rule(pick=st.integers(0, 10**6))
    def admin_credit_resent(self, pick: int) -> None:
        if not self.model.credits:
            return
        args, first = self.model.credits[pick % len(self.model.credits)]
        [out] = self._credit(args, 1)
        assert isinstance(out, OpOutcome) and out.replay and out.op_id == first.op_id, out

    @precondition(lambda self: self.model.events)
    @rule(pick=st.integers(0, 10**6), held=st.sampled_from([True] * 3 + [False]),
          school=st.sampled_from([0] * 5 + [1]), twice=st.booleans())
    def admin_marks_for_refund(self, pick: int, held: bool, school: int, twice: bool) -> None:
        event_id = self._pick_event(pick, held).body["event_id"]
        school_id = list(self.schools)[school]
        for _ in range(2 if twice else 1):
            facts = self.run(self._settlement_facts(event_id, school_id))
            try:
                marked: bool | OpRefused = self.run(mark_for_refund(
                    self._tx, school_id=school_id, event_id=event_id, actor="adm_prop",
                    reason="parent asked for the money back"))
            except OpRefused as exc:
                marked = exc
            event(f"mark_for_refund: {getattr(marked, 'code', marked)}")
            if facts["visible"] and facts["held"] and facts["unsettled"]:
                assert marked is True, marked
            elif (facts["visible"] and facts["held"]
                  and facts["resolution"] == "refund_requested"):
                assert marked is False, marked
            else:
                assert isinstance(marked, OpRefused), marked

    # ------------------------------------------------------------ after every step

    @invariant()
    def ledger_is_exact(self) -> None:
        report = self.run(audit(self.engine))
        assert report["ok"], report
        self.run(self._check_tables())

    async def _check_tables(self) -> None:
        async with self.engine.connect() as conn:
            await _check_payments(conn)
            await _check_refunds(conn, self.model)
            await _check_events(conn, self.model)
            await _check_balances(conn, self.model)


def only_first(outs: list[OpOutcome | OpRefused], settled: str) -> OpOutcome:
    """One operation applied; its twin sent at the same moment under the same key answers a
    replay of it, also on PostgreSQL where it waited on the row lock (it once answered a
    refusal saying ``settled`` there instead). Never a second outcome."""
    firsts = [o for o in outs if isinstance(o, OpOutcome) and not o.replay]
    assert len(firsts) == 1, outs
    for other in outs:
        if other is not firsts[0]:
            assert isinstance(other, OpOutcome), (settled, other)
            assert other.replay and other.op_id == firsts[0].op_id, other
    return firsts[0]


def vars_of(outcome: EventOutcome) -> dict[str, Any]:
    return {f: getattr(outcome, f) for f in EventOutcome.__dataclass_fields__}


async def rows(conn: Any, sql: str) -> list[Any]:
    return list((await conn.execute(sa.text(sql))).all())


# Every posting a payment owns: its events' own postings and the postings of admin credits of
# its held events, with the payment's ID.
PAYMENT_MONEY = """
SELECT e.payment_id AS payment_id, p.kind AS kind, p.amount AS amount
  FROM payment_events e JOIN postings p ON p.posting_id = e.txn_id
UNION ALL
SELECT e.payment_id, p.kind, p.amount
  FROM money_ops m JOIN payment_events e ON e.event_id = m.payment_event_id
  JOIN postings p ON p.posting_id = m.posting_id
 WHERE m.kind = 'payment_credit'
"""


async def _check_payments(conn: Any) -> None:
    per_payment = await rows(conn, f"""
        SELECT m.payment_id,
               SUM(CASE WHEN m.kind IN ('topup', 'payment_credit') THEN 1 ELSE 0 END) AS credits,
               SUM(CASE WHEN m.kind IN ('topup', 'payment_credit') THEN m.amount ELSE 0 END)
                 AS credited,
               SUM(CASE WHEN m.kind IN ('refund', 'chargeback') THEN m.amount ELSE 0 END)
                 AS debited,
               SUM(CASE WHEN m.kind NOT IN ('topup', 'payment_credit', 'refund', 'chargeback')
                   THEN 1 ELSE 0 END) AS strange
          FROM ({PAYMENT_MONEY}) m GROUP BY m.payment_id""")
    moved = {r.payment_id: r for r in per_payment}
    for r in per_payment:
        assert r.payment_id is not None
        assert int(r.credits) <= 1, f"payment {r.payment_id} credited {r.credits} times"
        assert int(r.debited) <= int(r.credited), f"payment {r.payment_id} refunded too much"
        assert int(r.strange) == 0
    for p in await rows(conn, "SELECT payment_id, credited, debited FROM payments"):
        got = moved.get(p.payment_id)
        assert (int(p.credited), int(p.debited)) == (
            (int(got.credited), int(got.debited)) if got else (0, 0)), p
    # One payment per non-empty reference; every credit of a reference is its payment's.
    refs = await rows(conn, """
        SELECT reference, COUNT(DISTINCT payment_id) AS n FROM payment_events
         WHERE reference <> '' GROUP BY reference""")
    assert all(int(r.n) == 1 for r in refs), refs
    by_ref = await rows(conn, """
        SELECT x.reference, COUNT(*) AS credits FROM (
          SELECT e.reference FROM payment_events e JOIN postings p ON p.posting_id = e.txn_id
           WHERE p.kind = 'topup' AND e.reference <> ''
          UNION ALL
          SELECT e.reference FROM money_ops m
            JOIN payment_events e ON e.event_id = m.payment_event_id
           WHERE m.kind = 'payment_credit' AND e.reference <> '') x
         GROUP BY x.reference HAVING COUNT(*) > 1""")
    assert not by_ref, f"references credited more than once: {by_ref}"


async def _check_refunds(conn: Any, model: Model) -> None:
    refunds = await rows(conn, """
        SELECT r.sale_ref, COUNT(*) AS times, SUM(r.amount) AS amount,
               MIN(r.kind) AS kind, MIN(r.posting) AS posting, MIN(s.total) AS total,
               MIN(s.kind) AS sale_kind
          FROM (SELECT voids_ref AS sale_ref, total AS amount, 'void' AS kind,
                       txn_id AS posting
                  FROM sales WHERE kind = 'void' AND status = 'applied'
                UNION ALL
                SELECT sale_ref, amount, 'reversal', posting_id
                  FROM money_ops WHERE kind = 'reversal') r
          LEFT JOIN sales s ON s.ref = r.sale_ref
         GROUP BY r.sale_ref""")
    for r in refunds:
        assert int(r.times) == 1, f"sale {r.sale_ref} refunded {r.times} times"
        assert r.sale_kind == "sale" and 0 <= int(r.amount) <= int(r.total), r
    links = {(r.sale_ref, r.kind, int(r.amount)) for r in await rows(
        conn, "SELECT sale_ref, kind, amount FROM sale_refunds")}
    assert links == {(r.sale_ref, r.kind, int(r.amount)) for r in refunds}
    assert links == {(s.body["ref"], s.refunded, s.body["total"]) for s in model.sales
                     if s.refunded}
    # Postings that give a sale's money back: one per refunded sale with a total, none else.
    posted = await rows(conn, """
        SELECT COALESCE(v.voids_ref, p.sale_ref) AS sale_ref, COUNT(*) AS n,
               SUM(p.amount) AS amount
          FROM postings p LEFT JOIN sales v ON v.ref = p.sale_ref AND p.kind = 'void'
         WHERE p.kind IN ('void', 'reversal') GROUP BY COALESCE(v.voids_ref, p.sale_ref)""")
    assert {(r.sale_ref, int(r.n), int(r.amount)) for r in posted} == {
        (ref, 1, amount) for ref, _, amount in links if amount}


async def _check_events(conn: Any, model: Model) -> None:
    stored = await rows(conn, """
        SELECT e.event_id, e.content_hash, e.status, e.amount, e.txn_id, p.amount AS posted,
               p.kind AS posting_kind
          FROM payment_events e LEFT JOIN postings p ON p.posting_id = e.txn_id""")
    assert {r.event_id: r.content_hash for r in stored} == {
        event_id: sent.digest for event_id, sent in model.events.items()}
    for r in stored:
        if r.status in MOVES:
            assert r.posted is not None and int(r.posted) == int(r.amount), r
        else:
            assert r.txn_id is None, r
    kept = await rows(conn, "SELECT event_id, content_hash FROM payment_conflicts")
    assert len(kept) == len({(r.event_id, r.content_hash) for r in kept})
    assert {(r.event_id, r.content_hash) for r in kept} == model.conflicts
    # Every money operation names one posting of its amount.
    ops = await rows(conn, """
        SELECT m.op_id, m.amount, p.amount AS posted FROM money_ops m
          LEFT JOIN postings p ON p.posting_id = m.posting_id""")
    assert all(r.posted is not None and int(r.posted) == abs(int(r.amount)) for r in ops), ops
    assert len(ops) == model.seeded_ops + len(model.reversals) + len(model.credits)


async def _check_balances(conn: Any, model: Model) -> None:
    derived = await rows(conn, """
        SELECT w.wallet_id, w.balance,
               COALESCE((SELECT SUM(amount) FROM postings WHERE to_account = w.wallet_id), 0)
             - COALESCE((SELECT SUM(amount) FROM postings WHERE from_account = w.wallet_id), 0)
               AS postings_sum
          FROM wallets w""")
    for r in derived:
        assert int(r.balance) == int(r.postings_sum), r
        if r.wallet_id in model.balances:
            assert int(r.balance) == model.balances[r.wallet_id], r
    # Both sides of every posting are accounts of its school: per school, the sum is zero.
    strays = await rows(conn, """
        SELECT p.posting_id FROM postings p
          LEFT JOIN accounts a ON a.account_id = p.from_account
          LEFT JOIN accounts b ON b.account_id = p.to_account
         WHERE a.school_id IS NULL OR b.school_id IS NULL
            OR a.school_id <> p.school_id OR b.school_id <> p.school_id""")
    assert not strays, strays


def test_money_moves_once_whatever_arrives(db_factory: DatabaseFactory) -> None:
    run_state_machine_as_test(
        lambda: MoneyMachine(db_factory),
        settings=settings(max_examples=8, stateful_step_count=40, deadline=None,
                          suppress_health_check=list(HealthCheck)))
