"""Applying a pushed batch exactly once: lock, load, judge, write, all in one transaction.

Lock order, the same everywhere in the server: the device row, then wallets sorted by ID, then
the school row (taken by :func:`versions.bump` just before the writes). Everything the
judgement reads is read after the first two, so a concurrent push of the same refs (two
server processes, a terminal retrying through a proxy) sees the other's committed outcome.
A race that still slips through (the same ref with a different wallet) hits the unique index
on (school, ref) and the batch is retried from the start, where it finds the winner's row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.clock import utcnow
from shared.protocol import Sale

from ..storage.bulk import bulk_insert
from ..storage.schema import (
    cashiers,
    credentials,
    device_seqs,
    devices,
    product_prices,
    products,
    sale_conflicts,
    sales,
    schools,
    wallet_day_spend,
    wallets,
)
from . import seqs, versions
from .judge import (
    BatchContext,
    BatchEffects,
    CredentialState,
    Result,
    StoredSale,
    WalletState,
    content_hash,
    judge_batch,
)
from .postings import lock_wallets, post

log = logging.getLogger(__name__)
RETRIES = 5
CHUNK = 900  # stays under every driver's bound-parameter limit


@dataclass(frozen=True, slots=True)
class PushOutcome:
    results: list[Result]
    acked_seq: int
    missing_seqs: list[int]


async def apply_push(engine: AsyncEngine, school_id: str, device_id: str, batch: list[Sale],
                     *, clock_skew: timedelta = timedelta(minutes=5),
                     write_lock: asyncio.Lock | None = None) -> PushOutcome:
    """Apply one pushed batch; retried whole on unique-index races and deadlocks."""
    # Pure CPU work before any lock: it overlaps another batch's database I/O.
    digests = [content_hash(sale) for sale in batch]
    for attempt in range(1, RETRIES + 1):
        try:
            if write_lock is None:
                return await _apply_once(engine, school_id, device_id, batch, digests,
                                         clock_skew)
            async with write_lock:
                return await _apply_once(engine, school_id, device_id, batch, digests,
                                         clock_skew)
        except (IntegrityError, DBAPIError) as exc:
            if attempt == RETRIES or not _retryable(exc):
                raise
            log.warning("push from %s retried after %s (attempt %d)", device_id,
                        type(exc.orig).__name__ if exc.orig else type(exc).__name__, attempt)
            await asyncio.sleep(0.01 * attempt)
    raise AssertionError("unreachable")


def _retryable(exc: DBAPIError) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    text = str(exc.orig or exc).lower()
    return any(s in text for s in ("deadlock", "could not serialize", "database is locked"))


async def _apply_once(engine: AsyncEngine, school_id: str, device_id: str, batch: list[Sale],
                      digests: list[str], clock_skew: timedelta) -> PushOutcome:
    async with engine.begin() as conn:
        now = utcnow()
        device = (await conn.execute(
            sa.select(devices.c.acked_seq, devices.c.max_seq)
            .where(devices.c.device_id == device_id).with_for_update()
        )).one()
        if not batch:
            missing = await seqs.missing_for(conn, device_id, device.acked_seq)
            await conn.execute(sa.update(devices).where(devices.c.device_id == device_id)
                               .values(last_seen_at=now))
            return PushOutcome([], int(device.acked_seq), missing)

        ctx = await _load_context(conn, school_id, device_id, batch, now, clock_skew)
        results, effects = judge_batch(ctx, batch, now, digests)
        # The school row's lock is taken here, late, so batches of one school only queue for
        # the write phase; wallets are stamped with this version by the balance UPDATE.
        version = await versions.bump(conn, school_id) if effects.touched_wallets else None
        await _write(conn, school_id, device_id, effects, version)

        acked, missing = seqs.advance(
            int(device.acked_seq), await seqs.stored_above(conn, device_id, device.acked_seq))
        max_seq = max([int(device.max_seq), *effects.new_seqs])
        await conn.execute(
            sa.update(devices).where(devices.c.device_id == device_id)
            .values(acked_seq=acked, max_seq=max_seq, last_seen_at=now, last_push_at=now))
        return PushOutcome(results, acked, missing)


async def _load_context(conn: AsyncConnection, school_id: str, device_id: str,
                        batch: list[Sale], now: datetime, clock_skew: timedelta) -> BatchContext:
    wallet_ids = {s.wallet_id for s in batch}
    locked = await lock_wallets(conn, school_id, wallet_ids)
    unknown = wallet_ids - set(locked)
    foreign = set(await _column_in(conn, wallets.c.wallet_id, wallets.c.wallet_id, unknown))

    school = (await conn.execute(
        sa.select(schools.c.timezone, schools.c.overdraft_limit)
        .where(schools.c.school_id == school_id))).one()

    refs = {s.ref for s in batch} | {s.voids for s in batch if s.voids}
    stored: dict[str, StoredSale] = {}
    for chunk in _chunks(refs):
        rows = await conn.execute(sa.select(
            sales.c.ref, sales.c.kind, sales.c.status, sales.c.code, sales.c.detail,
            sales.c.flags, sales.c.balance_after, sales.c.content_hash, sales.c.wallet_id,
            sales.c.credential_uid, sales.c.lines, sales.c.total, sales.c.voided_by,
            sales.c.business_day,
        ).where(sales.c.school_id == school_id, sales.c.ref.in_(chunk)))
        for r in rows:
            stored[r.ref] = StoredSale(
                ref=r.ref, kind=r.kind, status=r.status, code=r.code, detail=r.detail,
                flags=list(r.flags or []), balance_after=r.balance_after,
                content_hash=r.content_hash, wallet_id=r.wallet_id,
                credential_uid=r.credential_uid, lines=list(r.lines), total=r.total,
                voided_by=r.voided_by, business_day=r.business_day)
    conflicts: dict[tuple[str, str], None] = {}
    for chunk in _chunks(set(stored) & {s.ref for s in batch}):
        rows = await conn.execute(
            sa.select(sale_conflicts.c.ref, sale_conflicts.c.content_hash)
            .where(sale_conflicts.c.school_id == school_id, sale_conflicts.c.ref.in_(chunk)))
        conflicts.update({(r.ref, r.content_hash): None for r in rows})

    seq_owner: dict[int, str] = {}
    for chunk in _chunks({s.seq for s in batch}):
        rows = await conn.execute(
            sa.select(device_seqs.c.seq, device_seqs.c.ref)
            .where(device_seqs.c.device_id == device_id, device_seqs.c.seq.in_(chunk)))
        seq_owner.update({int(r.seq): r.ref for r in rows})

    uids = {s.credential_uid for s in batch if s.credential_uid}
    creds: dict[str, CredentialState] = {}
    for chunk in _chunks(uids):
        rows = await conn.execute(
            sa.select(credentials.c.uid, credentials.c.wallet_id, credentials.c.status,
                      credentials.c.blocked_at)
            .where(credentials.c.school_id == school_id, credentials.c.uid.in_(chunk)))
        creds.update({r.uid: CredentialState(r.wallet_id, r.status, r.blocked_at) for r in rows})

    cashier_ids = set(await _column_in(
        conn, cashiers.c.cashier_id, cashiers.c.cashier_id, {s.cashier_id for s in batch},
        cashiers.c.school_id == school_id))

    product_ids = {line.product_id for s in batch for line in s.lines}
    known_products = set(await _column_in(conn, products.c.product_id, products.c.product_id,
                                          product_ids, products.c.school_id == school_id))
    prices: dict[str, list[tuple[float, int]]] = {p: [] for p in known_products}
    for chunk in _chunks(known_products):
        rows = await conn.execute(
            sa.select(product_prices.c.product_id, product_prices.c.valid_from,
                      product_prices.c.price)
            .where(product_prices.c.product_id.in_(chunk))
            .order_by(product_prices.c.product_id, product_prices.c.valid_from))
        for r in rows:
            prices[r.product_id].append((r.valid_from.timestamp(), int(r.price)))
    for pid in [p for p, history in prices.items() if not history]:
        del prices[pid]  # a product with no price history cannot be judged: treat as unknown

    tz = ZoneInfo(school.timezone)
    day_spend: dict[tuple[str, str], int] = {}
    limited = [w for w, row in locked.items() if row.daily_limit is not None]
    if limited:
        days = {s.created_at.astimezone(tz).date().isoformat() for s in batch}
        days |= {st.business_day for st in stored.values()}
        for chunk in _chunks(limited):
            rows = await conn.execute(
                sa.select(wallet_day_spend.c.wallet_id, wallet_day_spend.c.day,
                          wallet_day_spend.c.amount)
                .where(wallet_day_spend.c.wallet_id.in_(chunk),
                       wallet_day_spend.c.day.in_(sorted(days))))
            day_spend.update({(r.wallet_id, r.day): int(r.amount) for r in rows})

    return BatchContext(
        school_id=school_id, device_id=device_id, now=now, timezone=tz,
        overdraft_limit=int(school.overdraft_limit), clock_skew=clock_skew,
        wallets={w: WalletState(int(r.balance), r.status, r.daily_limit)
                 for w, r in locked.items()},
        foreign_wallets=foreign, credentials=creds, cashiers=cashier_ids, prices=prices,
        stored=stored, conflicts=conflicts, seqs=seq_owner, day_spend=day_spend,
    )


async def _write(conn: AsyncConnection, school_id: str, device_id: str,
                 fx: BatchEffects, version: int | None) -> None:
    await bulk_insert(conn, sales, list(fx.new_sales.values()))
    await bulk_insert(conn, sale_conflicts, fx.new_conflicts)
    if fx.new_seqs:
        await bulk_insert(conn, device_seqs, [
            {"device_id": device_id, "seq": seq, "school_id": school_id, "ref": ref}
            for seq, ref in sorted(fx.new_seqs.items())])
    await post(conn, fx.postings, fx.touched_wallets, version)
    if fx.voided:
        await conn.execute(
            sa.update(sales)
            .where(sales.c.school_id == school_id, sales.c.ref == sa.bindparam("target"))
            .values(voided_by=sa.bindparam("void_ref")),
            [{"target": t, "void_ref": v} for t, v in sorted(fx.voided.items())])
    await _write_day_spend(conn, school_id, fx.day_deltas)


async def _write_day_spend(conn: AsyncConnection, school_id: str,
                           deltas: dict[tuple[str, str], int]) -> None:
    """Running daily spend; rows exist only for wallets with spending that day."""
    if not deltas:
        return
    keys = sorted(deltas)
    existing: set[tuple[str, str]] = set()
    for chunk in _chunks({w for w, _ in keys}):
        rows = await conn.execute(
            sa.select(wallet_day_spend.c.wallet_id, wallet_day_spend.c.day)
            .where(wallet_day_spend.c.wallet_id.in_(chunk),
                   wallet_day_spend.c.day.in_(sorted({d for _, d in keys}))))
        existing.update((r.wallet_id, r.day) for r in rows)
    updates = [{"w": w, "d": d, "x": deltas[(w, d)]} for w, d in keys if (w, d) in existing]
    inserts = [{"wallet_id": w, "day": d, "school_id": school_id, "amount": deltas[(w, d)]}
               for w, d in keys if (w, d) not in existing]
    if updates:
        await conn.execute(
            sa.update(wallet_day_spend)
            .where(wallet_day_spend.c.wallet_id == sa.bindparam("w"),
                   wallet_day_spend.c.day == sa.bindparam("d"))
            .values(amount=wallet_day_spend.c.amount + sa.bindparam("x", type_=sa.BigInteger)),
            updates)
    if inserts:
        await conn.execute(sa.insert(wallet_day_spend), inserts)


async def _column_in(conn: AsyncConnection, out: sa.Column[str], key: sa.Column[str],
                     values: Iterable[str], *where: sa.ColumnElement[bool]) -> list[str]:
    found: list[str] = []
    for chunk in _chunks(set(values)):
        rows = await conn.execute(sa.select(out).where(key.in_(chunk), *where))
        found.extend(r[0] for r in rows)
    return found


def _chunks(values: Iterable[Any]) -> Iterable[list[Any]]:
    items = sorted(values)
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]
