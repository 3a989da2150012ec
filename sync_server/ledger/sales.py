"""Applying a pushed batch exactly once: prepare, then lock, load, judge, write, commit.

A school's pushes queue for one write lock (SQLite's single writer; the school row on
PostgreSQL), so the work is split by where it must run. Before the lock: content hashes, line
dicts, business days and the rows' driver encoding, which only the sales' own content and the
school's calendar (time zone, offline window) decide, and what was already recorded under the
batch's refs and seqs. Under the lock: everything
else the judgement reads, the judgement, and the writes, in one transaction.

Reading recorded refs and seqs before the lock is safe because every claim the push makes is
an INSERT under a unique key: a sales row under (school, ref), a device_seqs row under
(device, seq), a conflict under (school, ref, content). If another push recorded one of them
after this push looked (the same batch sent to two server processes, a terminal retrying
through a proxy), the INSERT fails, the transaction rolls back, and the whole push starts
again from those reads, where it now finds the other's outcome. What a unique key cannot
guard is read under the lock: void targets (their refund link decides ``void_twice``), wallets,
bracelets, cashiers, prices and the school's settings (a changed calendar re-prepares the batch).

Lock order, the same everywhere in the server: the device row, then wallets sorted by ID, then
the school row (taken by :func:`versions.bump` just before the writes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.clock import utcnow
from shared.protocol import Sale

from .. import restrictions
from ..storage.bulk import RowShape, chunks, insert_shape
from ..storage.engine import statement_reads
from ..storage.schema import (
    Timestamp,
    device_seqs,
    devices,
    sale_conflicts,
    sale_refunds,
    sales,
    schools,
    wallets,
)
from ..storage.schema import postings as postings_table
from . import lookups, postings, sale_effects, seqs, spend, versions
from .accounts import REVENUE, system_account
from .idempotency import retrying
from .judge import (
    BatchContext,
    BatchEffects,
    ClockTrust,
    NewSale,
    PreparedSale,
    Result,
    StoredSale,
    WalletState,
    content_hash,
    judge_batch,
    prepare,
)
from .postings import lock_wallets

log = logging.getLogger(__name__)

# A sales row is what the sale says plus what judging decided; the first part is encoded
# before the write lock, the second under it.
SALE_FACTS = ("school_id", "ref", "device_id", "seq", "kind", "voids_ref", "created_at",
              "received_at", "cashier_id", "wallet_id", "credential_uid", "lines", "total",
              "offline", "content_hash", "business_day")
SALE_OUTCOME = ("status", "code", "detail", "flags", "balance_after", "txn_id", "needs_review")
SALE_COLUMNS = SALE_FACTS + SALE_OUTCOME
SEQ_COLUMNS = ("device_id", "seq", "school_id", "ref")
REFUND_COLUMNS = ("school_id", "sale_ref", "kind", "void_ref", "amount", "refunded_at")
CONFLICT_COLUMNS = ("school_id", "ref", "device_id", "seq", "content_hash", "payload",
                    "received_at")
# The sales columns whose values need the driver's bind processing (checked on every dialect by
# RowShape.encoders); the rest are passed as they are.
_ENCODED = ("created_at", "received_at", "lines", "offline", "flags", "needs_review")
# A sale's time goes on its sale row and its posting, and the batch's receipt time on every
# row: all four columns are Timestamps, so each distinct value is encoded once for all.
assert all(isinstance(c.type, Timestamp) for c in (
    sales.c.created_at, sales.c.received_at, postings_table.c.occurred_at,
    postings_table.c.posted_at))


class DeviceNotActive(Exception):
    """The device was revoked after its token was checked and before its push took the lock."""


@dataclass(frozen=True, slots=True)
class PushOutcome:
    results: list[Result]
    acked_seq: int
    missing_seqs: list[int]


@dataclass(frozen=True, slots=True)
class _Calendar:
    """What preparing a batch reads of its school: days and the clock-trust window."""

    timezone: str
    offline_max_hours: int


# The calendar each school's last push found under its locks, by school: what the next push
# prepares with before its lock instead of reading the school row a second time. A calendar
# changed meanwhile is found under the lock, and the batch is prepared again (_apply_once).
_calendars: dict[str, _Calendar] = {}


@dataclass(slots=True)
class _Batch:
    """One push, prepared and encoded for one school calendar."""

    calendar: _Calendar
    prepared: list[PreparedSale]
    sale_facts: list[tuple[Any, ...]]           # encoded SALE_FACTS, by batch position
    posting_rows: list[tuple[Any, ...] | None]  # encoded posting if applied, by batch position


async def apply_push(engine: AsyncEngine, school_id: str, device_id: str, batch: list[Sale],
                     *, clock_skew: timedelta = timedelta(minutes=5),
                     write_lock: AbstractAsyncContextManager[None] | None = None,
                     received_at: datetime | None = None) -> PushOutcome:
    """Apply one pushed batch; retried whole on unique-index races and deadlocks.

    ``received_at`` is now, except for the demo's history (:mod:`sync_server.demo_history`),
    which pushes each past day's sales as if they had arrived that day, so the clock-trust
    window judges them as it judged a real day's pushes."""
    if not batch:
        return await _acknowledged(engine, device_id)
    received_at = received_at or utcnow()
    digests = [content_hash(sale) for sale in batch]
    work: _Batch | None = None

    async def attempt() -> PushOutcome:
        nonlocal work
        recorded = await _read_recorded(engine, school_id, device_id, batch)
        if work is None or work.calendar != recorded.calendar:
            work = _encode(engine.dialect, school_id, device_id, batch, digests,
                           recorded.calendar, received_at, clock_skew)
        async with write_lock or nullcontext():
            return await _apply_once(engine, school_id, device_id, work, recorded,
                                     received_at, clock_skew)

    return await retrying(attempt, what=f"push from {device_id}")


async def _acknowledged(engine: AsyncEngine, device_id: str) -> PushOutcome:
    """What an empty push asks for: the device's acked_seq and missing seqs, read-only.

    A till pushes an empty batch every cycle to learn acked_seq, so this takes no row lock,
    no write lock (on SQLite a DEFERRED read) and writes nothing; the caller notes the contact
    in :mod:`sync_server.presence`.

    Without the device row's lock the answer may miss a non-empty push of the same device
    that commits meanwhile. That is harmless: a till sends its empty push only after the
    answers to its earlier pushes, each sent after its commit, so this read sees them all; only
    a push still being applied (a request the till gave up waiting for) can be missed. The
    acked_seq answered is then still no lower than any the till was told, so no refill starts
    (terminal/sync/cycle.py), and the next cycle's answer includes that push. The gaps are read
    after acked_seq, never from an older state than the acked_seq they are counted from."""
    async with statement_reads(engine) as conn:
        device = (await conn.execute(
            sa.select(devices.c.acked_seq, devices.c.status)
            .where(devices.c.device_id == device_id))).one()
        if device.status != "active":
            raise DeviceNotActive(device_id)
        missing = await seqs.missing_for(conn, device_id, device.acked_seq)
    return PushOutcome([], int(device.acked_seq), missing)


@dataclass(slots=True)
class _Recorded:
    """What the database held for the batch's refs and seqs before the lock (see above)."""

    calendar: _Calendar
    stored: dict[str, StoredSale]           # by ref, the batch's refs already recorded
    conflicts: dict[str, set[str]]          # ref -> content hashes kept as conflicts
    seqs: dict[int, str]                    # this device's seqs of the batch -> their ref


async def _read_recorded(engine: AsyncEngine, school_id: str, device_id: str,
                         batch: list[Sale]) -> _Recorded:
    async with statement_reads(engine) as conn:
        calendar = _calendars.get(school_id)
        if calendar is None:
            school = (await conn.execute(
                sa.select(schools.c.timezone, schools.c.offline_max_hours)
                .where(schools.c.school_id == school_id))).one()
            calendar = _calendars[school_id] = _Calendar(str(school.timezone),
                                                         int(school.offline_max_hours))
        refs = {sale.ref for sale in batch}
        stored = await _stored(conn, school_id, refs)
        conflicts: dict[str, set[str]] = {}
        for chunk in chunks(set(stored)):
            rows = await conn.execute(
                sa.select(sale_conflicts.c.ref, sale_conflicts.c.content_hash)
                .where(sale_conflicts.c.school_id == school_id, sale_conflicts.c.ref.in_(chunk)))
            for r in rows:
                conflicts.setdefault(r.ref, set()).add(r.content_hash)
        seq_owners = await _seq_owners(conn, device_id, {sale.seq for sale in batch})
    return _Recorded(calendar, stored, conflicts, seq_owners)


async def _stored(conn: AsyncConnection, school_id: str, refs: set[str]) -> dict[str, StoredSale]:
    stored: dict[str, StoredSale] = {}
    refunded_by = sa.func.coalesce(sale_refunds.c.void_ref, sale_refunds.c.kind)
    for chunk in chunks(refs):
        rows = await conn.execute(sa.select(
            sales.c.ref, sales.c.kind, sales.c.status, sales.c.code, sales.c.detail,
            sales.c.flags, sales.c.balance_after, sales.c.content_hash, sales.c.wallet_id,
            sales.c.credential_uid, sales.c.lines, sales.c.total,
            refunded_by.label("refunded_by"), sales.c.business_day,
        ).select_from(sales.outerjoin(sale_refunds, sa.and_(
            sale_refunds.c.school_id == sales.c.school_id,
            sale_refunds.c.sale_ref == sales.c.ref)))
         .where(sales.c.school_id == school_id, sales.c.ref.in_(chunk)))
        for r in rows:
            stored[r.ref] = StoredSale(
                ref=r.ref, kind=r.kind, status=r.status, code=r.code, detail=r.detail,
                flags=list(r.flags or []), balance_after=r.balance_after,
                content_hash=r.content_hash, wallet_id=r.wallet_id,
                credential_uid=r.credential_uid, lines=list(r.lines), total=r.total,
                refunded_by=r.refunded_by, business_day=r.business_day)
    return stored


def _encode(dialect: sa.Dialect, school_id: str, device_id: str, batch: list[Sale],
            digests: list[str], calendar: _Calendar, received_at: datetime,
            clock_skew: timedelta) -> _Batch:
    """Prepare the batch and encode its rows for the driver. This runs for every pushed
    sale, so it builds the tuples itself and encodes each distinct value once (a sale's time
    goes on its sale row and its posting); :meth:`RowShape.encoders` checks that no other
    column needs encoding on this dialect."""
    trust = ClockTrust(received_at, ahead=clock_skew,
                       behind=timedelta(hours=calendar.offline_max_hours))
    prepared = prepare(batch, ZoneInfo(calendar.timezone), digests, trust)
    moment, _, as_json, as_bool, _, _ = _sale_encoders(dialect)
    revenue = system_account(school_id, REVENUE)
    received = moment(received_at)
    sale_facts: list[tuple[Any, ...]] = []
    posting_rows: list[tuple[Any, ...] | None] = []
    for p in prepared:
        s = p.sale
        created = moment(p.stored_at or s.created_at)
        sale_facts.append((school_id, s.ref, device_id, s.seq, s.kind, s.voids, created,
                           received, s.cashier_id, s.wallet_id, s.credential_uid,
                           as_json(p.lines), s.total, as_bool(s.offline), p.digest, p.day))
        if p.posting_id is None:
            posting_rows.append(None)
            continue
        # Written only if the sale is applied: its wallet is then a locked wallet of this
        # school (never the revenue account) and total > 0, so Posting.check's rules hold.
        source, target = (s.wallet_id, revenue) if s.kind == "sale" else (revenue, s.wallet_id)
        posting_rows.append((p.posting_id, school_id, s.kind, source, target, s.total, s.ref,
                             created, received, None, device_id))
    return _Batch(calendar, prepared, sale_facts, posting_rows)


async def _apply_once(engine: AsyncEngine, school_id: str, device_id: str, work: _Batch,
                      recorded: _Recorded, now: datetime, clock_skew: timedelta) -> PushOutcome:
    async with engine.begin() as conn:
        # The device row's lock, and the school's settings read in the same statement (not
        # locked: the school row's lock is taken last, by versions.bump).
        device = (await conn.execute(
            sa.select(devices.c.acked_seq, devices.c.max_seq, devices.c.status,
                      *_SETTINGS)
            .join(schools, schools.c.school_id == devices.c.school_id)
            .where(devices.c.device_id == device_id, devices.c.school_id == school_id)
            .with_for_update(of=devices)
        )).one()
        if device.status != "active":
            raise DeviceNotActive(device_id)
        ctx, calendar, threshold = await _load_context(conn, school_id, work.prepared,
                                                       recorded, device)
        _calendars[school_id] = calendar
        if calendar != work.calendar:  # changed since it was read before the lock: redo days
            batch = [p.sale for p in work.prepared]
            work = _encode(conn.dialect, school_id, device_id, batch,
                           [p.digest for p in work.prepared], calendar, now, clock_skew)
        before = {w: state.balance for w, state in ctx.wallets.items()}  # judging moves them
        results, effects = judge_batch(ctx, work.prepared)
        # The school row's lock is taken here, late, so batches of one school only queue for
        # the write phase; wallets are stamped with this version by the balance UPDATE.
        version = await versions.bump(conn, school_id) if effects.wallet_deltas else None
        zone = ZoneInfo(calendar.timezone)
        await _write(conn, school_id, device_id, work, effects, version, now, zone)
        await sale_effects.after_write(conn, sale_effects.AppliedPush(
            school_id, device_id, sale_effects.applied_of(effects),
            before, now,
            sale_effects.recorded_of(effects), low_balance_threshold=threshold, zone=zone))

        acked = int(device.acked_seq)
        if int(device.max_seq) == acked:
            # Nothing was stored above acked_seq before this push (max_seq is the highest
            # stored seq, kept under this lock): what is above it now is this push's own.
            above = sorted(seq for seq in effects.new_seqs if seq > acked)
        else:
            above = await seqs.stored_above(conn, device_id, acked)
        acked, missing = seqs.advance(acked, above)
        max_seq = max([int(device.max_seq), *effects.new_seqs])
        await conn.execute(
            sa.update(devices).where(devices.c.device_id == device_id)
            .values(acked_seq=acked, max_seq=max_seq, last_seen_at=now, last_push_at=now))
        return PushOutcome(results, acked, missing)


# What judging a push reads of its school's settings, with the device row's lock.
_SETTINGS = (schools.c.timezone, schools.c.offline_max_hours, schools.c.overdraft_limit,
             schools.c.offline_max_sale, schools.c.low_balance_threshold)


async def _load_context(conn: AsyncConnection, school_id: str, batch: list[PreparedSale],
                        recorded: _Recorded, school: Any,
                        ) -> tuple[BatchContext, _Calendar, int | None]:
    """The judge's context, the school's calendar, and its low-balance threshold (``school``:
    the ``_SETTINGS`` read with the device's lock, so that neither the calendar nor telling
    parents costs the push a query of its own)."""
    wallet_ids = {p.sale.wallet_id for p in batch}
    locked = await lock_wallets(conn, school_id, wallet_ids)
    unknown = wallet_ids - set(locked)
    foreign = set(await _column_in(conn, wallets.c.wallet_id, wallets.c.wallet_id, unknown))

    # Void targets are read now, under the wallets' locks: whether one is already voided is
    # what no unique key guards.
    stored: dict[str, Any] = dict(recorded.stored)
    stored.update(await _stored(conn, school_id, {p.sale.voids for p in batch if p.sale.voids}))

    # Bracelets, cashiers, every restriction the wallets had, and prices: one statement on
    # PostgreSQL (ledger/lookups.py).
    found = await lookups.read(
        conn, school_id, uids={p.sale.credential_uid for p in batch if p.sale.credential_uid},
        cashier_ids={p.sale.cashier_id for p in batch}, wallet_ids=locked,
        product_ids={line.product_id for p in batch for line in p.sale.lines})

    limited = {w for w, row in locked.items() if row.daily_limit is not None}
    days = {(p.sale.wallet_id, p.day) for p in batch if p.sale.wallet_id in limited}
    days |= {(s.wallet_id, s.business_day) for s in stored.values() if s.wallet_id in limited}
    # The catalog of the products the sales name only when a wallet has (or had) a
    # restriction.
    spans = found.spans
    restricted = [p for p in batch if p.sale.wallet_id in spans]
    items = (await restrictions.catalog(
        conn, school_id, {ln.product_id for p in restricted for ln in p.sale.lines})
        if restricted else {})
    ctx = BatchContext(
        overdraft_limit=int(school.overdraft_limit), max_sale=int(school.offline_max_sale),
        wallets={w: WalletState(int(r.balance), r.status, r.daily_limit)
                 for w, r in locked.items()},
        foreign_wallets=foreign, credentials=found.credentials, cashiers=found.cashiers,
        prices=found.prices, stored=stored,
        conflicts=dict(recorded.conflicts), seqs=dict(recorded.seqs),
        day_spend=await spend.day_spend(conn, school_id, days),
        restrictions=spans, catalog=items,
    )
    threshold = school.low_balance_threshold
    return (ctx, _Calendar(str(school.timezone), int(school.offline_max_hours)),
            None if threshold is None else int(threshold))


async def _seq_owners(conn: AsyncConnection, device_id: str, wanted: set[int]) -> dict[int, str]:
    """Refs already holding the batch's seqs. A terminal's batch is a run of consecutive
    seqs, so one range scan usually replaces a thousand bound parameters; a sparse set (a
    jump to seq 10**12) is looked up by value so the scan never covers the gap."""
    owners: dict[int, str] = {}
    if not wanted:
        return owners
    low, high = min(wanted), max(wanted)
    if high - low < 2 * len(wanted):
        rows = await conn.execute(
            sa.select(device_seqs.c.seq, device_seqs.c.ref)
            .where(device_seqs.c.device_id == device_id, device_seqs.c.seq.between(low, high)))
        return {int(r.seq): r.ref for r in rows if int(r.seq) in wanted}
    for chunk in chunks(wanted):
        rows = await conn.execute(
            sa.select(device_seqs.c.seq, device_seqs.c.ref)
            .where(device_seqs.c.device_id == device_id, device_seqs.c.seq.in_(chunk)))
        owners.update({int(r.seq): r.ref for r in rows})
    return owners


async def _write(conn: AsyncConnection, school_id: str, device_id: str, work: _Batch,
                 fx: BatchEffects, version: int | None, now: datetime, zone: ZoneInfo) -> None:
    shape = _sales_shape(conn.dialect)
    outcome = _outcome_encoder(conn.dialect)
    rows: list[tuple[Any, ...]] = []
    posted: list[tuple[Any, ...]] = []
    for new in fx.new_sales.values():
        i = new.prepared.index
        txn_id = new.prepared.posting_id if new.posted else None
        rows.append(work.sale_facts[i] + outcome(new, txn_id))
        posting = work.posting_rows[i]
        if txn_id is not None and posting is not None:  # encoded whenever it has an ID
            posted.append(posting)
    await shape.execute(conn, rows)
    conflict = insert_shape(sale_conflicts, CONFLICT_COLUMNS, conn.dialect)
    await conflict.execute(conn, [conflict.encode((
        school_id, p.sale.ref, device_id, p.sale.seq, p.digest, p.sale.model_dump(mode="json"),
        now)) for p in fx.new_conflicts])
    await insert_shape(device_seqs, SEQ_COLUMNS, conn.dialect).execute(
        conn, [(device_id, seq, school_id, ref) for seq, ref in sorted(fx.new_seqs.items())])
    await postings.write(conn, posted, fx.wallet_deltas, version, zone=zone)
    if fx.refunds:
        # The refund link's primary key is what makes "refunded once" hold against an admin
        # reversal committing meanwhile: this INSERT then fails and the push is judged again.
        refund = insert_shape(sale_refunds, REFUND_COLUMNS, conn.dialect)
        await refund.execute(conn, [
            refund.encode((school_id, target, "void", void_ref, amount, now))
            for target, void_ref, amount in fx.refunds])


def _sales_shape(dialect: sa.Dialect) -> RowShape:
    return insert_shape(sales, SALE_COLUMNS, dialect)


@lru_cache(maxsize=4)
def _sale_encoders(dialect: sa.Dialect) -> tuple[Callable[[Any], Any], ...]:
    """The processors of ``_ENCODED``, in that order; checks once per dialect that no other
    sales or postings column needs one (the rows are built as plain tuples)."""
    postings.shape(dialect).encoders("occurred_at", "posted_at")  # Timestamps, like the sale's
    return _sales_shape(dialect).encoders(*_ENCODED)


def _outcome_encoder(dialect: sa.Dialect) -> Callable[[NewSale, str | None], tuple[Any, ...]]:
    """Encodes SALE_OUTCOME of a new row. ``flags`` and ``needs_review`` are the columns there
    that need it, and their values repeat (mostly ``[]`` and false), so each distinct value is
    encoded once."""
    *_, as_json, as_bool = _sale_encoders(dialect)
    flag_lists: dict[tuple[str, ...], Any] = {}
    review = {True: as_bool(True), False: as_bool(False)}

    def encode(new: NewSale, txn_id: str | None) -> tuple[Any, ...]:
        key = tuple(new.flags)
        flags = flag_lists.get(key)
        if flags is None:
            flags = flag_lists[key] = as_json(new.flags)
        exception = new.status == "rejected" or bool(new.flags)
        return (new.status, new.code, new.detail, flags, new.balance_after, txn_id,
                review[exception])
    return encode


async def _column_in(conn: AsyncConnection, out: sa.Column[str], key: sa.Column[str],
                     values: Iterable[str], *where: sa.ColumnElement[bool]) -> list[str]:
    found: list[str] = []
    for chunk in chunks(set(values)):
        rows = await conn.execute(sa.select(out).where(key.in_(chunk), *where))
        found.extend(r[0] for r in rows)
    return found

