"""Demo data: two schools a person can sell to at once (``pos-server seed-demo``).

Balances are real top-ups through the ledger, not numbers written into wallets, so a demo
database passes ``audit-ledger`` like a production one.

The names, balances and bracelet UIDs come from a seeded random generator, and the seed is a
fixed constant (:data:`DEMO_SEED`, logged and returned as ``seed``): two runs make the same
students, so a test that fails on demo data fails again the same way. (PINs, passwords and
enrollment codes are secrets and stay random; they are in the output.)

A few products carry allergens and two students carry restrictions (an allergy, a blocked
product), so the till's RESTRICTED answer can be tried at once; grades and homerooms tell
students of the same name apart.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from . import records, restrictions
from .ledger import money_ops
from .secrets import new_password, new_pin

FIRST = ["Sara", "Omar", "Lina", "Yusuf", "Maryam", "Adam", "Noor", "Khalid", "Huda", "Ali",
         "Reem", "Faisal", "Dana", "Hamza", "Aisha", "Zaid", "Layla", "Tariq", "Salma", "Ibrahim"]
LAST = "ABDFGHKMNQRST"
log = logging.getLogger(__name__)

DEMO_SEED = 20_261_127
PRODUCTS = [("Water 330ml", 150, "Drinks"), ("Orange juice", 300, "Drinks"),
            ("Laban", 250, "Drinks"), ("Chicken wrap", 1200, "Meals"),
            ("Falafel sandwich", 900, "Meals"), ("Rice & chicken", 1500, "Meals"),
            ("Fruit cup", 500, "Snacks"), ("Granola bar", 350, "Snacks"),
            ("Date cookies", 400, "Snacks"), ("Yoghurt", 300, "Snacks")]
ALLERGENS = {"Laban": ["milk"], "Yoghurt": ["milk"], "Granola bar": ["nuts", "gluten"],
             "Date cookies": ["gluten"], "Falafel sandwich": ["gluten", "sesame"]}
# (wallet index, restrictions): one student allergic to nuts, one who may not buy Laban.
RESTRICTED = {59: ("allergen", "nuts"), 58: ("product", "Laban")}
SCHOOLS = [("Al Noor Primary School", "SAR", "Asia/Riyadh", "alnoor"),
           ("Riverside Academy", "SAR", "Asia/Riyadh", "riverside")]
WALLETS_PER_SCHOOL = 60


def demo_uid(rng: random.Random) -> str:
    """7-byte NTAG-style UID (NXP manufacturer byte 04)."""
    return "04" + "".join(f"{rng.randrange(256):02X}" for _ in range(6))


async def seed(engine: AsyncEngine, *, rng: random.Random | None = None,
               seed_value: int = DEMO_SEED) -> dict[str, Any]:
    """Two demo schools from ``rng``, or from a generator seeded with ``seed_value``."""
    if rng is None:
        log.info("demo data from seed %d", seed_value)
        rng = random.Random(seed_value)
    out: dict[str, Any] = {"schools": [], "seed": seed_value}
    async with engine.begin() as conn:
        for name, currency, tz, slug in SCHOOLS:
            school_id = await records.create_school(conn, name, currency, tz)
            school: dict[str, Any] = {"school_id": school_id, "name": name,
                                      "currency": currency, "cashiers": [], "wallets": [],
                                      "products": []}
            for pname, price, category in PRODUCTS:
                allergens = ALLERGENS.get(pname, [])
                pid = await records.create_product(conn, school_id, pname, price, category,
                                                   allergens=allergens)
                school["products"].append({"product_id": pid, "name": pname, "price": price,
                                           "category": category, "allergens": allergens})
            for cname in ("Fatima (cashier)", "John (cashier)"):
                pin = new_pin()
                cid = await records.create_cashier(conn, school_id, cname, pin)
                school["cashiers"].append({"cashier_id": cid, "name": cname, "pin": pin})
            for i in range(WALLETS_PER_SCHOOL + 1):
                frozen = i == WALLETS_PER_SCHOOL
                display = f"{rng.choice(FIRST)} {rng.choice(LAST)}."
                limit = 1500 if i % 3 == 0 else None
                grade = 1 + i % 6
                homeroom = f"{grade}{'AB'[i // 6 % 2]}"
                wid = await records.create_wallet(
                    conn, school_id, display, daily_limit=limit,
                    student_number=f"{slug.upper()}-{1000 + i}", grade=f"Grade {grade}",
                    homeroom=homeroom)
                uid = await records.assign_credential(conn, school_id, wid, demo_uid(rng))
                balance = rng.randrange(20, 120) * 100
                await money_ops.apply_in(conn, money_ops.MoneyOp(
                    school_id=school_id, kind="opening", wallet_id=wid, amount=balance,
                    idem_key=f"demo-opening:{wid}", actor="seed-demo", reason="demo top-up"))
                if frozen:
                    await records.update_wallet(conn, school_id, wid, status="frozen")
                blocked: dict[str, list[str]] = {"categories": [], "products": [],
                                                 "allergens": []}
                if i in RESTRICTED:
                    kind, value = RESTRICTED[i]
                    if kind == "product":
                        value = next(p["product_id"] for p in school["products"]
                                     if p["name"] == value)
                    blocked[{"allergen": "allergens", "product": "products",
                             "category": "categories"}[kind]].append(value)
                    await restrictions.set_for_wallet(
                        conn, school_id, wid, restrictions.Wanted(
                            frozenset(blocked["categories"]), frozenset(blocked["products"]),
                            frozenset(blocked["allergens"])), actor="seed-demo")
                school["wallets"].append({
                    "wallet_id": wid, "display_name": display, "balance": balance,
                    "daily_limit": limit, "credential_uid": uid,
                    "status": "frozen" if frozen else "active", "grade": f"Grade {grade}",
                    "homeroom": homeroom, "restrictions": blocked})
            # A lost bracelet: blocked on the first wallet, which keeps its active one.
            lost = await records.assign_credential(conn, school_id,
                                                   school["wallets"][0]["wallet_id"],
                                                   demo_uid(rng))
            await records.block_credential(conn, school_id, lost)
            school["blocked_credential_uid"] = lost
            code = await records.create_enrollment_code(conn, school_id, timedelta(days=7))
            school["enrollment_code"] = code
            password = new_password()
            email = f"admin@{slug}.demo"
            await records.create_admin(conn, email, password, "school_admin", school_id,
                                       f"{name} admin")
            school["admin"] = {"email": email, "password": password}
            viewer_password = new_password()
            await records.create_admin(conn, f"viewer@{slug}.demo", viewer_password,
                                       "school_viewer", school_id, f"{name} viewer")
            school["viewer"] = {"email": f"viewer@{slug}.demo", "password": viewer_password}
            manager_password = new_password()
            await records.create_admin(conn, f"manager@{slug}.demo", manager_password,
                                       "school_manager", school_id, f"{name} manager")
            school["manager"] = {"email": f"manager@{slug}.demo", "password": manager_password}
            out["schools"].append(school)
        platform_password = new_password()
        await records.create_admin(conn, "platform@pos.demo", platform_password,
                                   "platform_admin", None, "Platform admin")
        out["platform_admin"] = {"email": "platform@pos.demo", "password": platform_password}
    return out
