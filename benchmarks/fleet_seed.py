"""A district for the fleet benchmark: many small schools, seeded fast.

Schools and admins go through ``sync_server.records``; products, cashiers, wallets, their
bracelets, opening balances and enrollment codes are written in bulk, in the rows those
functions write (an opening balance as a posting, the money operation that owns it and the
wallet's day net, so ``audit-ledger`` holds), because 250 schools through one call per row
took minutes on a busy machine before every run.

Each school's wallets have three uses, kept apart so each measurement is exact: the first
``TOPUP_WALLETS`` only receive top-ups (no till sells to them, so the balance a till must show
is known), the next ``BLOCK_WALLETS`` have bracelets that admins block during the run, and the
rest are the students who buy.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

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
    from sync_server.storage.engine import create_engine
    from sync_server.storage.migrate import upgrade

    await upgrade(db_url)
    engine = create_engine(db_url)
    out: list[School] = []
    try:
        # The PIN's hash costs a few hundred milliseconds of CPU on purpose: made once, for
        # the first school's cashier, and given to every other school's cashier.
        async with engine.begin() as conn:
            first = await records.create_school(conn, "School 1", "SAR", "UTC")
            cashier = await records.create_cashier(conn, first, "Cashier", "4829")
            pin_hash = await _pin_hash(conn, cashier)
        for s in range(schools):
            async with engine.begin() as conn:
                school_id = first if s == 0 else await records.create_school(
                    conn, f"School {s + 1}", "SAR", "UTC")
                school = await _fill(conn, school_id, None if s == 0 else pin_hash,
                                     cashier if s == 0 else None, wallets, tills)
                if s < admin_schools:
                    school.admin = (f"admin{s}@fleet.bench", secrets.token_urlsafe(12))
                    await records.create_admin(conn, school.admin[0], school.admin[1],
                                               "school_admin", school_id, "Fleet admin")
            out.append(school)
    finally:
        await engine.dispose()
    return out


async def _pin_hash(conn: Any, cashier_id: str) -> str:
    from sync_server.storage.schema import cashiers

    return str((await conn.execute(sa.select(cashiers.c.pin_hash).where(
        cashiers.c.cashier_id == cashier_id))).scalar_one())


async def _fill(conn: Any, school_id: str, pin_hash: str | None, cashier: str | None,
                wallets: int, tills: int) -> School:
    """Products, a cashier (unless given), wallets with bracelets and opening balances, and
    enrollment codes, each kind in one bulk INSERT."""
    from sync_server.ledger.accounts import TOPUP_CLEARING, system_account
    from sync_server.secrets import code_hash, new_enrollment_code
    from sync_server.storage.schema import (
        accounts,
        cashiers,
        credentials,
        enrollment_codes,
        money_ops,
        postings,
        product_prices,
        products,
    )
    from sync_server.storage.schema import wallets as wallet_table
    from sync_server.storage.schema_people import bracelets
    from sync_server.storage.schema_rollups import wallet_day_nets

    now = datetime.now(UTC)
    items = [(new_id("prd"), name, price) for name, price in PRODUCTS]
    await conn.execute(sa.insert(products), [
        {"product_id": pid, "school_id": school_id, "name": name, "price": price,
         "category": "Food", "active": True, "version": 1, "created_at": now,
         "allergens": [], "position": i + 1} for i, (pid, name, price) in enumerate(items)])
    await conn.execute(sa.insert(product_prices), [
        {"product_id": pid, "school_id": school_id, "price": price,
         "valid_from": datetime(2000, 1, 1, tzinfo=UTC)} for pid, _, price in items])
    if cashier is None:
        cashier = new_id("csh")
        await conn.execute(sa.insert(cashiers).values(
            cashier_id=cashier, school_id=school_id, name="Cashier", pin_hash=pin_hash,
            active=True, version=1, created_at=now))
    ids = [new_id("wal") for _ in range(wallets)]
    uids = [_uid() for _ in range(wallets)]
    await conn.execute(sa.insert(accounts), [
        {"account_id": w, "school_id": school_id, "kind": "wallet", "created_at": now}
        for w in ids])
    await conn.execute(sa.insert(wallet_table), [
        {"wallet_id": w, "school_id": school_id, "display_name": f"Student {i}",
         "balance": OPENING_BALANCE, "daily_limit": None, "status": "active", "version": 1,
         "created_at": now, "updated_at": now} for i, w in enumerate(ids)])
    await conn.execute(sa.insert(credentials), [
        {"school_id": school_id, "uid": u, "wallet_id": w, "status": "active",
         "assigned_at": now, "version": 1} for w, u in zip(ids, uids, strict=True)])
    # The console's bracelet pages read the inventory (bracelet_inventory.py): without these
    # rows every block page was 404 and no block was ever measured.
    await conn.execute(sa.insert(bracelets), [
        {"school_id": school_id, "uid": u, "state": "assigned", "wallet_id": w,
         "received_at": now, "updated_at": now} for w, u in zip(ids, uids, strict=True)])
    opening = [(w, new_id("pst")) for w in ids]
    await conn.execute(sa.insert(postings), [
        {"posting_id": pid, "school_id": school_id, "kind": "opening",
         "from_account": system_account(school_id, TOPUP_CLEARING), "to_account": w,
         "amount": OPENING_BALANCE, "occurred_at": now, "posted_at": now}
        for w, pid in opening])
    await conn.execute(sa.insert(money_ops), [
        {"op_id": new_id("op"), "school_id": school_id, "idem_key": f"fleet-opening:{w}",
         "content_hash": "fleet", "kind": "opening", "wallet_id": w,
         "amount": OPENING_BALANCE, "posting_id": pid, "balance_after": OPENING_BALANCE,
         "actor": "benchmark", "created_at": now} for w, pid in opening])
    # The rollup postings.write keeps beside each posting (audit-ledger compares them); the
    # schools are on UTC, so the business day is today's UTC date.
    await conn.execute(sa.insert(wallet_day_nets), [
        {"wallet_id": w, "day": now.date().isoformat(), "school_id": school_id,
         "net": OPENING_BALANCE} for w in ids])
    codes = [new_enrollment_code() for _ in range(tills)]
    await conn.execute(sa.insert(enrollment_codes), [
        {"code_hash": code_hash(c), "school_id": school_id, "created_at": now,
         "expires_at": now + timedelta(hours=6)} for c in codes])
    split = TOPUP_WALLETS + BLOCK_WALLETS
    return School(school_id, cashier, [(pid, price) for pid, _, price in items],
                  ids[:TOPUP_WALLETS], uids[TOPUP_WALLETS:split],
                  list(zip(ids[split:], uids[split:], strict=True)), codes)
