"""One school year of one school, pushed through the ledger (the ``seed`` step of year.py).

Every sale, void, reversal and top-up goes through the ledger's own functions, as in
production: tills' sales through :func:`apply_push` in pushes of at most 1,000 with
``received_at`` on the day they reached the server; top-ups through
:func:`money_ops.apply_in` (the console's path) and :func:`payments.apply_event` (the
gateway webhook's path); reversals through ``money_ops``. Nothing is INSERTed into a ledger
table here, so ``audit-ledger`` judges the result like a real school's database.

What the year holds (a seeded generator: two runs make the same year, refs aside):
1,500 students (half with Arabic names, half with English ones), each with a bracelet;
4 tills; 180 school days from September to June (Friday and Saturday off, a winter and a
spring break); about 6,700 sales a day, most at the two breaks; about 1 % voided by the till
a few minutes later, about 0.1 % reversed by an admin; top-ups when a balance runs low,
a quarter of them through the webhook; a till offline now and then, its day pushed the next
morning; and exceptions: overdrafts (parents late to top up), sales on a lost bracelet after
it was blocked, restricted items sold by a till on a stale snapshot, rejected sales
(an unknown product, a total that does not add up).

Limits of going through the ledger: top-ups, reversals and webhook events are stamped with
the time they were seeded (the ledger takes "now" for them, as it should), so only sales
carry their school day; reports of top-ups by day see them all on the seeding day.
"""

from __future__ import annotations

import bisect
import itertools
import random
import time as clock
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.ids import new_id, new_ref
from shared.protocol import PaymentEvent, Sale, SaleLine
from sync_server import records, restrictions
from sync_server.ledger import money_ops, payments
from sync_server.ledger.sales import apply_push
from sync_server.secrets import new_device_token, token_hash
from sync_server.storage.schema import devices

TZ = ZoneInfo("Asia/Riyadh")
WEEKEND = (4, 5)  # Friday, Saturday
FIRST_DAY = date(2025, 9, 7)  # the first Sunday of September 2025
BREAKS = [(date(2026, 1, 4), date(2026, 1, 15)), (date(2026, 3, 15), date(2026, 3, 26))]
BATCH = 1000  # the protocol's largest push
ADMIN_EMAIL, ADMIN_PASSWORD = "admin@year.bench", "year-bench-password"

AR_FIRST = ["سارة", "عمر", "لينا", "يوسف", "مريم", "آدم", "نور", "خالد", "هدى", "علي", "ريم",
            "فيصل", "دانة", "حمزة", "عائشة", "زيد", "ليلى", "طارق", "سلمى", "إبراهيم", "جود",
            "راكان", "لمى", "سلطان", "شهد"]
AR_LAST = ["الحربي", "العتيبي", "القحطاني", "الشمري", "الدوسري", "الغامدي", "الزهراني",
           "المطيري", "السبيعي", "العنزي", "البقمي", "الشهري", "المالكي", "الرشيد"]
EN_FIRST = ["Sara", "Omar", "Lina", "Yusuf", "Maryam", "Adam", "Noor", "Khalid", "Huda", "Ali",
            "Reem", "Faisal", "Dana", "Hamza", "Aisha", "Zaid", "Layla", "Tariq", "Salma",
            "Ibrahim", "Emma", "Daniel", "Sofia", "James", "Mia"]
EN_LAST = ["Al-Harbi", "Al-Otaibi", "Al-Qahtani", "Al-Shammari", "Al-Dosari", "Al-Ghamdi",
           "Al-Zahrani", "Smith", "Khan", "Hassan", "Rahman", "Patel", "Nasser", "Haddad"]
PRODUCTS = [("Water 330ml", 150, "Drinks", []), ("Orange juice", 300, "Drinks", []),
            ("Laban", 250, "Drinks", ["milk"]), ("Apple juice", 300, "Drinks", []),
            ("Chicken wrap", 1200, "Meals", ["gluten"]), ("Falafel sandwich", 900, "Meals",
                                                          ["gluten", "sesame"]),
            ("Rice & chicken", 1500, "Meals", []), ("Pasta", 1300, "Meals", ["gluten"]),
            ("Cheese sandwich", 800, "Meals", ["milk", "gluten"]),
            ("Fruit cup", 500, "Snacks", []), ("Granola bar", 350, "Snacks", ["nuts", "gluten"]),
            ("Date cookies", 400, "Snacks", ["gluten"]), ("Yoghurt", 300, "Snacks", ["milk"]),
            ("Peanut bar", 450, "Snacks", ["nuts"]), ("Popcorn", 250, "Snacks", [])]
NUTS = {"Granola bar", "Peanut bar"}
AVERAGE_BASKET = 1_200  # minor units, of the baskets _basket makes (measured)


@dataclass(frozen=True, slots=True)
class Plan:
    """The seed parameters; year.py records them beside the data and --reuse compares them."""

    students: int = 1500
    days: int = 180
    tills: int = 4
    sales_per_day: int = 6700
    seed: int = 2025_09_07

    def as_dict(self) -> dict[str, int]:
        return {"students": self.students, "days": self.days, "tills": self.tills,
                "sales_per_day": self.sales_per_day, "seed": self.seed}


@dataclass(slots=True)
class Student:
    wallet_id: str
    uid: str
    weight: float
    reliable: bool            # tops up when low; the others sometimes let it run dry
    balance: int = 0          # as the ledger last answered
    lost_uid: str | None = None
    lost_until: date | None = None
    nut_allergy_since: datetime | None = None


@dataclass(slots=True)
class Counts:
    sales: int = 0
    voids: int = 0
    reversals: int = 0
    topups: int = 0
    webhook_topups: int = 0
    rejected: int = 0
    flagged: int = 0
    late_pushes: int = 0
    pushes: int = 0
    flags: dict[str, int] = field(default_factory=dict)


def school_days(plan: Plan) -> list[date]:
    days, day = [], FIRST_DAY
    while len(days) < plan.days:
        if day.weekday() not in WEEKEND and not any(a <= day <= b for a, b in BREAKS):
            days.append(day)
        day += timedelta(days=1)
    return days


def _moment(rng: random.Random, day: date) -> datetime:
    """Most sales at the morning break and at lunch; a trickle the rest of the day."""
    r = rng.random()
    if r < 0.30:
        start, minutes = time(9, 30), 25
    elif r < 0.90:
        start, minutes = time(11, 45), 50
    else:
        start, minutes = time(7, 15), 390
    return datetime.combine(day, start, TZ) + timedelta(seconds=rng.uniform(0, minutes * 60))


class Seeder:
    def __init__(self, engine: AsyncEngine, plan: Plan, log: Any = print,
                 on_day: Any = None) -> None:
        self.engine, self.plan, self.log, self.on_day = engine, plan, log, on_day
        self.rng = random.Random(plan.seed)
        self.counts = Counts()
        self.students: list[Student] = []
        self.products: list[dict[str, Any]] = []
        self.cashiers: list[str] = []
        self.tills: list[str] = []
        self.seqs: list[int] = []
        self.school_id = ""

    # ------------------------------------------------------------------ setup

    async def setup(self) -> None:
        rng = self.rng
        async with self.engine.begin() as conn:
            self.school_id = await records.create_school(conn, "Year Bench School", "SAR",
                                                         "Asia/Riyadh")
            for name, price, category, allergens in PRODUCTS:
                pid = await records.create_product(conn, self.school_id, name, price, category,
                                                   allergens=allergens)
                self.products.append({"product_id": pid, "name": name, "price": price})
            for i in range(6):
                self.cashiers.append(await records.create_cashier(
                    conn, self.school_id, f"Cashier {i + 1}", f"{rng.randrange(10**6):06d}"))
            for i in range(self.plan.students):
                arabic = i % 2 == 0
                first, last = ((rng.choice(AR_FIRST), rng.choice(AR_LAST)) if arabic
                               else (rng.choice(EN_FIRST), rng.choice(EN_LAST)))
                grade = 1 + i % 12
                wid = await records.create_wallet(
                    conn, self.school_id, f"{first} {last}",
                    daily_limit=15_000 if i % 20 == 7 else None,
                    student_number=f"Y-{10_000 + i}", grade=f"Grade {grade}",
                    homeroom=f"{grade}{'ABCD'[i // 12 % 4]}")
                uid = await records.assign_credential(conn, self.school_id, wid, self._uid())
                self.students.append(Student(wid, uid, rng.uniform(0.3, 1.7),
                                             reliable=rng.random() > 0.03))
            await records.create_admin(conn, ADMIN_EMAIL, ADMIN_PASSWORD, "school_admin",
                                       self.school_id, "Year bench admin")
            enrolled = datetime.combine(FIRST_DAY - timedelta(days=7), time(8), TZ)
            for i in range(self.plan.tills):
                device_id = new_id("dev")
                await conn.execute(sa.insert(devices).values(
                    device_id=device_id, school_id=self.school_id, name=f"Till {i + 1}",
                    token_hash=token_hash(new_device_token()), status="active",
                    enrolled_at=enrolled, last_seen_at=enrolled, app_version="year-bench"))
                self.tills.append(device_id)
        self.seqs = [0] * self.plan.tills
        self.cum = list(itertools.accumulate(s.weight for s in self.students))

    def _uid(self) -> str:
        return "04" + "".join(f"{self.rng.randrange(256):02X}" for _ in range(6))

    # ------------------------------------------------------------------ the year

    async def run(self) -> Counts:
        await self.setup()
        days = school_days(self.plan)
        started = clock.perf_counter()
        late: dict[int, list[list[Sale]]] = {}
        for n, day in enumerate(days):
            await self._life_events(day)
            await self._topups(day)
            for till, pushes in late.items():  # yesterday's offline tills, this morning
                received = datetime.combine(day, time(7, 5), TZ)
                for chunk in pushes:
                    await self._push(till, chunk, received)
                self.counts.late_pushes += 1
            late = {}
            per_till = self._day_sales(day)
            for till, sales in enumerate(per_till):
                if self.rng.random() < (0.08 if till == 3 else 0.02):
                    late[till] = self._numbered(till, [s.model_copy(update={"offline": True})
                                                       for s in sales])
                    continue
                for chunk in self._numbered(till, sales):
                    last = max(s.created_at for s in chunk)
                    await self._push(till, chunk, last + timedelta(seconds=20))
            await self._reversals(day, per_till)
            if self.on_day is not None:
                self.on_day(n + 1, day, self.counts)
            if n % 5 == 4 or n == len(days) - 1:
                rate = self.counts.sales / (clock.perf_counter() - started)
                self.log(f"  {day} day {n + 1}/{len(days)}: {self.counts.sales:,} sales "
                         f"({rate:,.0f}/s), {self.counts.topups:,} top-ups, "
                         f"{self.counts.flagged:,} flagged, {self.counts.rejected:,} rejected")
        # Offline tills of the last day push after the year ended.
        for till, pushes in late.items():
            received = datetime.combine(days[-1] + timedelta(days=1), time(9), TZ)
            for chunk in pushes:
                await self._push(till, chunk, received)
        return self.counts

    async def _life_events(self, day: date) -> None:
        """Lost bracelets (blocked, replaced) and new nut allergies, a few a week."""
        rng = self.rng
        async with self.engine.begin() as conn:
            if rng.random() < 0.25:
                st = rng.choice(self.students)
                if st.lost_uid is None:
                    at = datetime.combine(day, time(7, 30), TZ)
                    await records.block_credential(conn, self.school_id, st.uid, at=at)
                    st.lost_uid, st.lost_until = st.uid, day + timedelta(days=4)
                    st.uid = await records.assign_credential(conn, self.school_id,
                                                             st.wallet_id, self._uid())
            if rng.random() < 0.15:
                st = rng.choice(self.students)
                if st.nut_allergy_since is None:
                    st.nut_allergy_since = datetime.combine(day, time(7, 0), TZ)
                    await restrictions.set_for_wallet(
                        conn, self.school_id, st.wallet_id, restrictions.Wanted(
                            frozenset(), frozenset(), frozenset({"nuts"})),
                        actor="year-bench", at=st.nut_allergy_since)

    async def _topups(self, day: date) -> None:
        """Parents top up when a balance runs low; a quarter pay through the gateway."""
        rng = self.rng
        low = [s for s in self.students if s.balance < 3 * self._daily(s)
               and (s.reliable or rng.random() < 0.4)]
        by_hook = [s for s in low if rng.random() < 0.25]
        hooked = {id(s) for s in by_hook}
        async with self.engine.begin() as conn:
            for st in low:
                if id(st) in hooked:
                    continue
                amount = self._topup_amount(st)
                out = await money_ops.apply_in(conn, money_ops.MoneyOp(
                    school_id=self.school_id, kind="topup", wallet_id=st.wallet_id,
                    amount=amount, idem_key=f"year:{day}:{st.wallet_id}", actor="year-bench",
                    reason="cash at the office"))
                assert out.balance_after is not None
                st.balance = out.balance_after
                self.counts.topups += 1
        for st in by_hook:
            amount = self._topup_amount(st)
            ref = f"pay-{day:%Y%m%d}-{st.wallet_id[-12:]}"
            outcome = await payments.apply_event(self.engine.begin, PaymentEvent(
                event_id=f"evt-{ref}", event_type="payment.completed", reference=ref,
                wallet_id=st.wallet_id, amount=amount, currency="SAR",
                created_at=datetime.combine(day - timedelta(days=1), time(20), TZ)),
                source="webhook", policy=payments.Policy())
            assert outcome.status == "credited", outcome
            assert outcome.balance_after is not None
            st.balance = outcome.balance_after
            self.counts.topups += 1
            self.counts.webhook_topups += 1

    def _daily(self, st: Student) -> int:
        """What the student spends on an average school day."""
        return int(self.plan.sales_per_day / self.plan.students * AVERAGE_BASKET * st.weight)

    def _topup_amount(self, st: Student) -> int:
        """One to four weeks of the student's spending, in round 50.00s."""
        weeks = self._daily(st) * 5 * self.rng.choice((1, 2, 2, 4))
        return max(5_000, -(-weeks // 5_000) * 5_000)

    def _day_sales(self, day: date) -> list[list[Sale]]:
        """The day's sales and voids per till, in the order each till recorded them."""
        rng, plan = self.rng, self.plan
        count = int(plan.sales_per_day * rng.uniform(0.9, 1.1))
        per_till: list[list[Sale]] = [[] for _ in range(plan.tills)]
        for _ in range(count):
            st = self.students[bisect.bisect(self.cum, rng.random() * self.cum[-1])]
            moment = _moment(rng, day)
            lines = self._basket(st, moment)
            total = sum(ln.quantity * ln.unit_price for ln in lines)
            uid: str | None = st.uid
            offline = False
            if st.lost_uid and st.lost_until and day <= st.lost_until and rng.random() < 0.3:
                uid, offline = st.lost_uid, True  # the old bracelet, on a stale snapshot
            if rng.random() < 0.0002:
                lines = [SaleLine(product_id=new_id("prd"), name="Gone", quantity=1,
                                  unit_price=500)]
                total = 500
            elif rng.random() < 0.0001:
                total += 100
            till = rng.randrange(plan.tills)
            sale = Sale(ref=new_ref(), seq=1, kind="sale", voids=None, created_at=moment,
                        cashier_id=self.cashiers[till + rng.randrange(2) * 2 % 6],
                        wallet_id=st.wallet_id, credential_uid=uid, lines=lines, total=total,
                        offline=offline)
            per_till[till].append(sale)
            if rng.random() < 0.01:
                per_till[till].append(sale.model_copy(update={
                    "ref": new_ref(), "kind": "void", "voids": sale.ref,
                    "created_at": moment + timedelta(seconds=rng.uniform(30, 240))}))
        for sales in per_till:
            sales.sort(key=lambda s: s.created_at)
        return per_till

    def _numbered(self, till: int, sales: list[Sale]) -> list[list[Sale]]:
        """The till's pushes for the day, seqs numbered in the order it recorded them."""
        out = []
        for chunk in _pushes(sales):
            base = self.seqs[till]
            out.append([s.model_copy(update={"seq": base + i + 1})
                        for i, s in enumerate(chunk)])
            self.seqs[till] = base + len(chunk)
        return out

    def _basket(self, st: Student, moment: datetime) -> list[SaleLine]:
        rng = self.rng
        picks = rng.sample(self.products, rng.choice((1, 1, 2, 2, 2, 3)))
        if st.nut_allergy_since and moment > st.nut_allergy_since:
            if rng.random() > 0.02:  # the till's snapshot knew; once in a while it did not
                picks = [p for p in picks if p["name"] not in NUTS] or [self.products[0]]
        return [SaleLine(product_id=p["product_id"], name=p["name"],
                         quantity=2 if rng.random() < 0.05 else 1, unit_price=p["price"])
                for p in picks]

    async def _push(self, till: int, chunk: list[Sale], received_at: datetime) -> None:
        outcome = await apply_push(self.engine, self.school_id, self.tills[till], chunk,
                                   received_at=received_at)
        self.counts.pushes += 1
        by_ref = {s.ref: s for s in chunk}
        for r in outcome.results:
            sale = by_ref[r["ref"]]
            if r["status"] == "rejected":
                self.counts.rejected += 1
                continue
            assert r["status"] == "applied", r
            if sale.kind == "void":
                self.counts.voids += 1
            else:
                self.counts.sales += 1
            if r["flags"]:
                self.counts.flagged += 1
                for flag in r["flags"]:
                    self.counts.flags[flag] = self.counts.flags.get(flag, 0) + 1
            if r["balance_after"] is not None:
                self._student(sale.wallet_id).balance = int(r["balance_after"])

    def _student(self, wallet_id: str) -> Student:
        if not hasattr(self, "_by_wallet"):
            self._by_wallet = {s.wallet_id: s for s in self.students}
        return self._by_wallet[wallet_id]

    async def _reversals(self, day: date, per_till: list[list[Sale]]) -> None:
        """About 0.1 % of the day's sales given back by an admin (a wrong charge)."""
        sales = [s for till in per_till for s in till if s.kind == "sale" and s.total]
        voided = {s.voids for till in per_till for s in till if s.kind == "void"}
        picks = [s for s in sales if s.ref not in voided and self.rng.random() < 0.001]
        async with self.engine.begin() as conn:
            for sale in picks:
                try:
                    out = await money_ops.apply_in(conn, money_ops.MoneyOp(
                        school_id=self.school_id, kind="reversal", wallet_id=sale.wallet_id,
                        amount=sale.total, idem_key=f"year-rev:{sale.ref}",
                        actor="year-bench", reason="charged twice", sale_ref=sale.ref))
                except money_ops.OpRefused:  # a rejected sale: nothing to give back
                    continue
                assert out.balance_after is not None
                self._student(sale.wallet_id).balance = out.balance_after
                self.counts.reversals += 1


async def backdate(engine: AsyncEngine, school_id: str) -> None:
    """The school, its accounts, wallets, bracelets, products, prices and cashiers as
    registered two weeks before the year began.

    The records functions stamp "now", so a school seeded today would have been created
    after every sale of its year, and reports that ask what existed at a past date (balances
    at a date) would find nothing. These are registration dates, not money: no posting,
    balance or money operation changes."""
    from sync_server.storage.schema import (
        accounts,
        cashiers,
        credentials,
        product_prices,
        products,
        schools,
        wallets,
    )

    at = datetime.combine(FIRST_DAY - timedelta(days=14), time(8), TZ)
    async with engine.begin() as conn:
        for table, column in ((schools, "created_at"), (accounts, "created_at"),
                              (wallets, "created_at"), (credentials, "assigned_at"),
                              (products, "created_at"), (product_prices, "valid_from"),
                              (cashiers, "created_at")):
            await conn.execute(sa.update(table).where(table.c.school_id == school_id,
                                                      table.c[column] > at)
                               .values({column: at}))


def _pushes(sales: list[Sale]) -> Iterator[list[Sale]]:
    """A till's recorded sales in pushes of at most 1,000, in seq order.

    A void never shares a push with its sale: the sale reached the server before the cashier
    voided it. (The seeder pushes a till's day in a few large pushes rather than every few
    seconds as a till does, so a void that would fall into its sale's push is recorded at the
    start of the next one instead.)"""
    chunk: list[Sale] = []
    refs: set[str] = set()
    held: list[Sale] = []
    for sale in sales:
        if sale.kind == "void" and sale.voids in refs:
            held.append(sale)
            continue
        if len(chunk) + len(held) >= BATCH:
            yield chunk
            chunk, refs = [], set()
            if held:
                chunk = [v.model_copy(update={"created_at": max(v.created_at, sale.created_at)})
                         for v in held]
                held = []
        chunk.append(sale)
        refs.add(sale.ref)
    if chunk:
        yield chunk
    if held:
        yield held
