"""A district for the fleet benchmark: many small schools, seeded fast.

Schools, products and cashiers go through ``sync_server.records`` like any school; wallets,
their bracelets and opening balances are written in bulk the way the ledger writes them (a
posting and the money operation that owns it, so ``audit-ledger`` holds), because 250 schools
of wallets through one call each would take minutes before every run.

Each school's wallets have three uses, kept apart so each measurement is exact: the first
``TOPUP_WALLETS`` only receive top-ups (no till sells to them, so the balance a till must show
is known), the next ``BLOCK_WALLETS`` have bracelets that admins block during the run, and the
rest are the students who buy.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from shared.ids import new_id

TOPUP_WALLETS = 4
BLOCK_WALLETS = 6
OPENING_BALANCE = 1_000_000  # minor units: nobody runs dry during a run
PRODUCTS = [("Water", 150), ("Juice", 300), ("Sandwich", 900), ("Apple", 200),
            ("Rice box", 1200), ("Laban", 250), ("Muffin", 450), ("Salad", 800),
            ("Yoghurt", 350), ("Granola", 400)]


@dataclass
class School:
    school_id: str
    cashier_id: str
    products: list[tuple[str, int]]
    topup_wallets: list[str]
    block_uids: list[str]
    buyers: list[tuple[str, str]]  # (wallet_id, bracelet uid)
    codes: list[str] = field(default_factory=list)
    admin: tuple[str, str] | None = None  # (email, password) where blocks are measured


def _uid() -> str:
    return "04" + secrets.token_hex(6).upper()


async def seed_district(db_url: str, schools: int, wallets: int, tills: int,
                        admin_schools: int) -> list[School]:
    """``schools`` schools of ``wallets`` wallets and ``tills`` enrollment codes each; the
    first ``admin_schools`` get a school admin (the console blocks bracelets there)."""
    from sync_server import records
    from sync_server.ledger.accounts import TOPUP_CLEARING, system_account
    from sync_server.storage.engine import create_engine
    from sync_server.storage.migrate import upgrade
    from sync_server.storage.schema import accounts, credentials, money_ops, postings
    from sync_server.storage.schema import wallets as wallet_table

    await upgrade(db_url)
    engine = create_engine(db_url)
    out: list[School] = []
    now = datetime.now(UTC)
    try:
        for s in range(schools):
            async with engine.begin() as conn:
                school_id = await records.create_school(conn, f"School {s + 1}", "SAR", "UTC")
                products = [(await records.create_product(conn, school_id, name, price,
                                                          "Food"), price)
                            for name, price in PRODUCTS]
                cashier = await records.create_cashier(conn, school_id, "Cashier", "4829")
                ids = [new_id("wal") for _ in range(wallets)]
                uids = [_uid() for _ in range(wallets)]
                await conn.execute(sa.insert(accounts), [
                    {"account_id": w, "school_id": school_id, "kind": "wallet",
                     "created_at": now} for w in ids])
                await conn.execute(sa.insert(wallet_table), [
                    {"wallet_id": w, "school_id": school_id, "display_name": f"Student {i}",
                     "balance": OPENING_BALANCE, "daily_limit": None, "status": "active",
                     "version": 1, "created_at": now, "updated_at": now}
                    for i, w in enumerate(ids)])
                await conn.execute(sa.insert(credentials), [
                    {"school_id": school_id, "uid": u, "wallet_id": w, "status": "active",
                     "assigned_at": now, "version": 1} for w, u in zip(ids, uids, strict=True)])
                opening = [(w, new_id("pst")) for w in ids]
                await conn.execute(sa.insert(postings), [
                    {"posting_id": pid, "school_id": school_id, "kind": "opening",
                     "from_account": system_account(school_id, TOPUP_CLEARING),
                     "to_account": w, "amount": OPENING_BALANCE, "occurred_at": now,
                     "posted_at": now} for w, pid in opening])
                await conn.execute(sa.insert(money_ops), [
                    {"op_id": new_id("op"), "school_id": school_id,
                     "idem_key": f"fleet-opening:{w}", "content_hash": "fleet",
                     "kind": "opening", "wallet_id": w, "amount": OPENING_BALANCE,
                     "posting_id": pid, "balance_after": OPENING_BALANCE,
                     "actor": "benchmark", "created_at": now} for w, pid in opening])
                codes = [await records.create_enrollment_code(conn, school_id,
                                                              timedelta(hours=6))
                         for _ in range(tills)]
                admin = None
                if s < admin_schools:
                    admin = (f"admin{s}@fleet.bench", secrets.token_urlsafe(12))
                    await records.create_admin(conn, admin[0], admin[1], "school_admin",
                                               school_id, "Fleet admin")
            split = TOPUP_WALLETS + BLOCK_WALLETS
            out.append(School(school_id, cashier, products, ids[:TOPUP_WALLETS],
                              uids[TOPUP_WALLETS:split],
                              list(zip(ids[split:], uids[split:], strict=True)), codes, admin))
    finally:
        await engine.dispose()
    return out
