"""Deciding each pushed sale's outcome: pure functions over a loaded, locked context.

Kept free of I/O so the rules of the spec's result table can be read in one place and tested
without a database. :mod:`sync_server.ledger.sales` loads the context (holding the locks that
make it current), runs :func:`judge_batch`, and writes what it returns in the same transaction.

Policy (DESIGN.md): only well-formedness, authentication and tenant rules refuse a sale. A sale
that overdraws, used a blocked bracelet or broke a limit was already handed over at the counter,
so it is applied and flagged for review, never dropped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.ids import new_id
from shared.protocol import Sale, canonical_time

from .accounts import REVENUE, system_account
from .postings import Posting


def content_hash(sale: Sale) -> str:
    """Hash of the parsed sale: 'identical' compares values, not bytes or time offsets.

    Built from a tuple of the fields rather than a JSON dump: it runs once per pushed sale and
    was a third of the judging time the other way.
    """
    key = (sale.ref, sale.seq, sale.kind, sale.voids, canonical_time(sale.created_at),
           sale.cashier_id, sale.wallet_id, sale.credential_uid, sale.total, sale.offline,
           tuple((ln.product_id, ln.name, ln.quantity, ln.unit_price) for ln in sale.lines))
    return hashlib.blake2b(repr(key).encode(), digest_size=32).hexdigest()


def line_dicts(sale: Sale) -> list[dict[str, Any]]:
    return [{"product_id": ln.product_id, "name": ln.name, "quantity": ln.quantity,
             "unit_price": ln.unit_price} for ln in sale.lines]


@dataclass(slots=True)
class StoredSale:
    """The first outcome recorded for a ref (a row of ``sales``), as far as judging needs it."""

    ref: str
    kind: str
    status: str
    code: str | None
    detail: str | None
    flags: list[str]
    balance_after: int | None
    content_hash: str
    wallet_id: str
    credential_uid: str | None
    lines: list[dict[str, Any]]
    total: int
    voided_by: str | None
    business_day: str
    is_new: bool = False  # inserted by this batch (so voided_by is set before the insert)


@dataclass(slots=True)
class WalletState:
    balance: int
    status: str
    daily_limit: int | None


@dataclass(slots=True)
class CredentialState:
    wallet_id: str
    status: str
    blocked_at: datetime | None


@dataclass(slots=True)
class BatchContext:
    school_id: str
    device_id: str
    now: datetime
    timezone: ZoneInfo
    overdraft_limit: int
    clock_skew: timedelta
    wallets: dict[str, WalletState]            # this school's, locked
    foreign_wallets: set[str]                  # exist, but in another school
    credentials: dict[str, CredentialState]    # this school's, by UID
    cashiers: set[str]
    prices: dict[str, list[tuple[float, int]]]  # product -> [(valid_from epoch s, price)] asc
    stored: dict[str, StoredSale]              # by ref: batch refs and void targets
    conflicts: dict[tuple[str, str], None]     # (ref, content_hash) already kept as conflicts
    seqs: dict[int, str]                       # this device's seq -> ref, for batch seqs
    day_spend: dict[tuple[str, str], int]      # (wallet, school-local day) -> spent


@dataclass(slots=True)
class BatchEffects:
    """Everything the batch writes, gathered so the writes can be a few bulk statements."""

    new_sales: dict[str, dict[str, Any]] = field(default_factory=dict)  # by ref
    new_conflicts: list[dict[str, Any]] = field(default_factory=list)
    new_seqs: dict[int, str] = field(default_factory=dict)
    postings: list[Posting] = field(default_factory=list)
    voided: dict[str, str] = field(default_factory=dict)  # target ref -> void ref (old rows)
    day_deltas: dict[tuple[str, str], int] = field(default_factory=dict)
    touched_wallets: set[str] = field(default_factory=set)


_CONFLICT_WORDS = "this ref was already used with different content"
_REJECT_WORDS = {
    "wallet_unknown": "no wallet with this ID exists",
    "wallet_other_school": "the wallet belongs to another school",
    "wallet_closed": "the wallet is closed",
    "total_mismatch": "total does not equal the sum of quantity x unit_price",
    "void_target_unknown": "the voided sale is unknown or was not applied",
    "void_mismatch": "the void does not repeat the voided sale's wallet, bracelet, lines and total",
    "void_twice": "the sale was already voided",
    "product_unknown": "a line names a product this school does not have",
    "cashier_unknown": "the cashier is not one of this school's cashiers",
    "seq_reused": "this device already used that seq for another sale",
}


Result = dict[str, Any]  # one entry of the response's ``results``, exactly as sent


def _result(ref: str, status: str, flags: list[str] | None = None,
            balance_after: int | None = None, code: str | None = None,
            detail: str | None = None, original_status: str | None = None) -> Result:
    out: Result = {"ref": ref, "status": status, "flags": list(flags or []),
                   "balance_after": balance_after, "code": code, "detail": detail}
    if original_status is not None:  # only replays carry it
        out["original_status"] = original_status
    return out


def judge_batch(ctx: BatchContext, sales: list[Sale], received_at: datetime,
                digests: list[str] | None = None) -> tuple[list[Result], BatchEffects]:
    effects = BatchEffects()
    hashes = digests or [content_hash(sale) for sale in sales]
    results = [_judge_one(ctx, effects, sale, digest, received_at)
               for sale, digest in zip(sales, hashes, strict=True)]
    return results, effects


def _judge_one(ctx: BatchContext, fx: BatchEffects, sale: Sale, digest: str,
               received_at: datetime) -> Result:
    prior = ctx.stored.get(sale.ref)
    if prior is not None:
        if prior.content_hash == digest:
            return _result(sale.ref, "duplicate", prior.flags, prior.balance_after, prior.code,
                           prior.detail, original_status=prior.status)
        if (sale.ref, digest) in ctx.conflicts:
            return _result(sale.ref, "duplicate", detail=_CONFLICT_WORDS,
                           original_status="conflict")
        ctx.conflicts[(sale.ref, digest)] = None
        _claim_seq(ctx, fx, sale)
        fx.new_conflicts.append({
            "school_id": ctx.school_id, "ref": sale.ref, "device_id": ctx.device_id,
            "seq": sale.seq, "content_hash": digest, "payload": sale.model_dump(mode="json"),
            "received_at": received_at,
        })
        return _result(sale.ref, "conflict", detail=_CONFLICT_WORDS)

    owner = ctx.seqs.get(sale.seq)
    if owner is not None and owner != sale.ref:
        return _record(ctx, fx, sale, digest, received_at, reject="seq_reused")
    _claim_seq(ctx, fx, sale)

    code = _reject_code(ctx, sale)
    if code is not None:
        return _record(ctx, fx, sale, digest, received_at, reject=code)
    return _apply(ctx, fx, sale, digest, received_at)


def _claim_seq(ctx: BatchContext, fx: BatchEffects, sale: Sale) -> None:
    if sale.seq not in ctx.seqs:
        ctx.seqs[sale.seq] = sale.ref
        fx.new_seqs[sale.seq] = sale.ref


def _reject_code(ctx: BatchContext, sale: Sale) -> str | None:
    if sale.cashier_id not in ctx.cashiers:
        return "cashier_unknown"
    wallet = ctx.wallets.get(sale.wallet_id)
    if wallet is None:
        return "wallet_other_school" if sale.wallet_id in ctx.foreign_wallets else "wallet_unknown"
    if wallet.status == "closed":
        return "wallet_closed"
    if sale.total != sale.lines_total():
        return "total_mismatch"
    if any(line.product_id not in ctx.prices for line in sale.lines):
        return "product_unknown"
    if sale.kind == "void":
        target = ctx.stored.get(sale.voids or "")
        if target is None or target.kind != "sale" or target.status != "applied":
            return "void_target_unknown"
        if target.voided_by is not None:
            return "void_twice"
        if (target.wallet_id != sale.wallet_id or target.credential_uid != sale.credential_uid
                or target.total != sale.total
                or target.lines != line_dicts(sale)):
            return "void_mismatch"
    return None


def _apply(ctx: BatchContext, fx: BatchEffects, sale: Sale, digest: str,
           received_at: datetime) -> Result:
    wallet = ctx.wallets[sale.wallet_id]
    day = business_day(sale.created_at, ctx.timezone)
    flags: list[str] = []
    if sale.kind == "sale":
        delta = -sale.total
        flags += _sale_flags(ctx, sale, wallet, day)
        spend_key = (sale.wallet_id, day)
        spend_delta = sale.total
    else:
        delta = sale.total
        target = ctx.stored[sale.voids or ""]
        target.voided_by = sale.ref
        if target.is_new:  # voided in the batch that records it: mark the row before insert
            fx.new_sales[target.ref]["voided_by"] = sale.ref
        else:
            fx.voided[target.ref] = sale.ref
        spend_key = (sale.wallet_id, target.business_day)
        spend_delta = -sale.total
    if sale.created_at - ctx.now > ctx.clock_skew:
        flags.append("clock_skew")
    wallet.balance += delta
    if sale.kind == "sale" and wallet.balance < -ctx.overdraft_limit:
        flags.insert(0, "overdraft")
    ctx.day_spend[spend_key] = ctx.day_spend.get(spend_key, 0) + spend_delta
    fx.day_deltas[spend_key] = fx.day_deltas.get(spend_key, 0) + spend_delta
    fx.touched_wallets.add(sale.wallet_id)
    txn_id = new_id("pst") if sale.total else None
    if txn_id is not None:
        wallet_id, revenue = sale.wallet_id, system_account(ctx.school_id, REVENUE)
        fx.postings.append(Posting(
            posting_id=txn_id, school_id=ctx.school_id, kind=sale.kind,
            from_account=wallet_id if sale.kind == "sale" else revenue,
            to_account=revenue if sale.kind == "sale" else wallet_id, amount=sale.total,
            occurred_at=sale.created_at, posted_at=received_at, sale_ref=sale.ref,
            actor=ctx.device_id))
    return _record(ctx, fx, sale, digest, received_at, flags=flags,
                   balance_after=wallet.balance, txn_id=txn_id, day=day)


def _sale_flags(ctx: BatchContext, sale: Sale, wallet: WalletState, day: str) -> list[str]:
    flags = []
    uid = sale.credential_uid
    if uid is not None:
        cred = ctx.credentials.get(uid)
        if (cred is not None and cred.status == "blocked" and cred.blocked_at is not None
                and cred.blocked_at <= sale.created_at):
            flags.append("credential_blocked")
        if cred is None or cred.wallet_id != sale.wallet_id:
            flags.append("credential_mismatch")
    if wallet.status == "frozen":
        flags.append("wallet_frozen")
    limit = wallet.daily_limit
    if limit is not None and ctx.day_spend.get((sale.wallet_id, day), 0) + sale.total > limit:
        flags.append("daily_limit_exceeded")
    moment = sale.created_at.timestamp()
    if any(line.unit_price != price_at(ctx.prices[line.product_id], moment)
           for line in sale.lines):
        flags.append("price_mismatch")
    return flags


def _record(ctx: BatchContext, fx: BatchEffects, sale: Sale, digest: str, received_at: datetime,
            *, reject: str | None = None, flags: list[str] | None = None,
            balance_after: int | None = None, txn_id: str | None = None,
            day: str | None = None) -> Result:
    status = "rejected" if reject else "applied"
    detail = _REJECT_WORDS[reject] if reject else None
    lines = line_dicts(sale)
    day = day or business_day(sale.created_at, ctx.timezone)
    flags = flags or []
    ctx.stored[sale.ref] = StoredSale(
        ref=sale.ref, kind=sale.kind, status=status, code=reject, detail=detail, flags=flags,
        balance_after=balance_after, content_hash=digest, wallet_id=sale.wallet_id,
        credential_uid=sale.credential_uid, lines=lines, total=sale.total, voided_by=None,
        business_day=day, is_new=True,
    )
    fx.new_sales[sale.ref] = {
        "school_id": ctx.school_id, "ref": sale.ref, "device_id": ctx.device_id,
        "seq": sale.seq, "kind": sale.kind, "voids_ref": sale.voids,
        "created_at": sale.created_at, "received_at": received_at,
        "cashier_id": sale.cashier_id, "wallet_id": sale.wallet_id,
        "credential_uid": sale.credential_uid, "lines": lines, "total": sale.total,
        "offline": sale.offline, "status": status, "code": reject, "detail": detail,
        "flags": flags, "balance_after": balance_after, "content_hash": digest,
        "txn_id": txn_id, "voided_by": None, "business_day": day,
    }
    return _result(sale.ref, status, flags, balance_after, reject, detail)


def business_day(moment: datetime, tz: ZoneInfo) -> str:
    """School-local calendar day: daily limits run midnight to midnight where the school is."""
    return moment.astimezone(tz).date().isoformat()


def price_at(history: list[tuple[float, int]], moment: float) -> int:
    """Catalog price in force at ``moment`` (epoch seconds; the earliest known price before
    any history). Epoch floats, because comparing aware datetimes of different tzinfo objects
    made this the slowest step of judging."""
    price = history[0][1]
    if len(history) == 1:
        return price
    for valid_from, value in history:
        if valid_from <= moment:
            price = value
        else:
            break
    return price
