"""Demo data: two schools a person can sell to at once (``pos-server seed-demo``).

Balances are real top-ups through the ledger, not numbers written into wallets, so a demo
database passes ``audit-ledger`` like a production one.
"""

from __future__ import annotations

import random
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from . import records
from .ledger import money_ops
from .secrets import new_password, new_pin

FIRST = ["Sara", "Omar", "Lina", "Yusuf", "Maryam", "Adam", "Noor", "Khalid", "Huda", "Ali",
         "Reem", "Faisal", "Dana", "Hamza", "Aisha", "Zaid", "Layla", "Tariq", "Salma", "Ibrahim"]
LAST = "ABDFGHKMNQRST"
PRODUCTS = [("Water 330ml", 150, "Drinks"), ("Orange juice", 300, "Drinks"),
            ("Laban", 250, "Drinks"), ("Chicken wrap", 1200, "Meals"),
            ("Falafel sandwich", 900, "Meals"), ("Rice & chicken", 1500, "Meals"),
            ("Fruit cup", 500, "Snacks"), ("Granola bar", 350, "Snacks"),
            ("Date cookies", 400, "Snacks"), ("Yoghurt", 300, "Snacks")]
SCHOOLS = [("Al Noor Primary School", "SAR", "Asia/Riyadh", "alnoor"),
           ("Riverside Academy", "SAR", "Asia/Riyadh", "riverside")]
WALLETS_PER_SCHOOL = 60


def demo_uid(rng: random.Random) -> str:
    """7-byte NTAG-style UID (NXP manufacturer byte 04)."""
    return "04" + "".join(f"{rng.randrange(256):02X}" for _ in range(6))


async def seed(engine: AsyncEngine, *, rng: random.Random | None = None) -> dict[str, Any]:
    rng = rng or random.Random(secrets.randbits(64))
    out: dict[str, Any] = {"schools": []}
    async with engine.begin() as conn:
        for name, currency, tz, slug in SCHOOLS:
            school_id = await records.create_school(conn, name, currency, tz)
            school: dict[str, Any] = {"school_id": school_id, "name": name,
                                      "currency": currency, "cashiers": [], "wallets": [],
                                      "products": []}
            for pname, price, category in PRODUCTS:
                pid = await records.create_product(conn, school_id, pname, price, category)
                school["products"].append({"product_id": pid, "name": pname, "price": price,
                                           "category": category})
            for cname in ("Fatima (cashier)", "John (cashier)"):
                pin = new_pin()
                cid = await records.create_cashier(conn, school_id, cname, pin)
                school["cashiers"].append({"cashier_id": cid, "name": cname, "pin": pin})
            for i in range(WALLETS_PER_SCHOOL + 1):
                frozen = i == WALLETS_PER_SCHOOL
                display = f"{rng.choice(FIRST)} {rng.choice(LAST)}."
                limit = 1500 if i % 3 == 0 else None
                wid = await records.create_wallet(
                    conn, school_id, display, daily_limit=limit,
                    student_number=f"{slug.upper()}-{1000 + i}", grade=f"Grade {1 + i % 6}")
                uid = await records.assign_credential(conn, school_id, wid, demo_uid(rng))
                balance = rng.randrange(20, 120) * 100
                await money_ops.apply_in(conn, money_ops.MoneyOp(
                    school_id=school_id, kind="opening", wallet_id=wid, amount=balance,
                    idem_key=f"demo-opening:{wid}", actor="seed-demo", reason="demo top-up"))
                if frozen:
                    await records.update_wallet(conn, school_id, wid, status="frozen")
                school["wallets"].append({
                    "wallet_id": wid, "display_name": display, "balance": balance,
                    "daily_limit": limit, "credential_uid": uid,
                    "status": "frozen" if frozen else "active"})
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
            out["schools"].append(school)
        platform_password = new_password()
        await records.create_admin(conn, "platform@pos.demo", platform_password,
                                   "platform_admin", None, "Platform admin")
        out["platform_admin"] = {"email": "platform@pos.demo", "password": platform_password}
    return out
