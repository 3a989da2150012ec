"""Deciding each pushed sale's outcome: pure functions over a loaded, locked context.

Kept free of I/O so the rules of the spec's result table can be read in one place and tested
without a database. Judging runs in two steps, because a school's pushes queue for one write
lock and only the second step has to wait there:

- :func:`prepare` works out everything a sale's own content decides (its content hash, line
  dicts, whether its time can be trusted and so its school-local day, whether its lines add
  up, its posting's ID) before the lock;
- :func:`judge_batch` decides against the locked state (wallets, refs and seqs already stored,
  bracelets, catalog) and returns what to write.

:mod:`sync_server.ledger.sales` loads the context, runs both, and writes the result in the
same transaction.

Policy (DESIGN.md): only well-formedness, authentication and tenant rules refuse a sale. A sale
that overdraws, used a blocked bracelet or broke a limit was already handed over at the counter,
so it is applied and flagged for review, never dropped. The one refusal on money grounds is
:mod:`.bounds`: no movement may take a balance past the server's floor or ceiling (int64).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.ids import new_id
from shared.protocol import Sale, canonical_time

from ..restrictions import CatalogItem, Span, blocked_lines, in_force
from . import bounds
from .idempotency import Verdict, verdict


def content_hash(sale: Sale) -> str:
    """Hash of the parsed sale: 'identical' compares values, not bytes or time offsets.

    Built from a tuple of the fields rather than a JSON dump: it runs once per pushed sale and
    was a third of the judging time the other way. Stored hashes depend on it: never change it.
    """
    try:
        when = canonical_time(sale.created_at)
    except OverflowError:  # the instant is outside UTC's years 1-9999: name it another way
        when = _beyond_calendar(sale.created_at)
    key = (sale.ref, sale.seq, sale.kind, sale.voids, when,
           sale.cashier_id, sale.wallet_id, sale.credential_uid, sale.total, sale.offline,
           tuple((ln.product_id, ln.name, ln.quantity, ln.unit_price) for ln in sale.lines))
    return hashlib.blake2b(repr(key).encode(), digest_size=32).hexdigest()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _beyond_calendar(moment: datetime) -> str:
    """One text per instant for times :func:`canonical_time` cannot convert. Subtracting
    aware datetimes compares instants without building a UTC datetime, so it never overflows;
    the prefix keeps these texts apart from every canonical one."""
    since = moment - _EPOCH
    return f"epoch{since.days}d{since.seconds}s{since.microseconds}us"


def line_dicts(sale: Sale) -> list[dict[str, Any]]:
    return [{"product_id": ln.product_id, "name": ln.name, "quantity": ln.quantity,
             "unit_price": ln.unit_price} for ln in sale.lines]


def business_day(moment: datetime, tz: ZoneInfo) -> str:
    """School-local calendar day: daily limits run midnight to midnight where the school is."""
    return moment.astimezone(tz).date().isoformat()


@dataclass(frozen=True, slots=True)
class ClockTrust:
    """The window in which the server believes a till's ``created_at``: from the school's
    offline window (``offline_max_hours``: a till sells no longer than that without a sync)
    before the server received the push, to ``clock_skew`` after it."""

    received_at: datetime
    ahead: timedelta              # the server's clock_skew setting
    behind: timedelta             # the school's offline_max_hours


@dataclass(slots=True)
class PreparedSale:
    """A pushed sale with what its own content decides, worked out before the write lock."""

    sale: Sale
    index: int                    # position in the pushed batch
    digest: str                   # content hash
    lines: list[dict[str, Any]]   # as stored, and as a void must repeat them
    day: str                      # school-local business day the server counts it on
    moment: float                 # created_at as epoch seconds, for catalog price lookups
    adds_up: bool                 # total == sum(quantity x unit_price)
    posting_id: str | None        # used if the sale is applied; a total of 0 posts nothing
    skewed: bool = False          # created_at outside the ClockTrust window: flag clock_skew
    stored_at: datetime | None = None  # created_at as stored, when it must differ (bounds)


def prepare(sales: list[Sale], tz: ZoneInfo, digests: list[str],
            trust: ClockTrust) -> list[PreparedSale]:
    """``digests`` are the sales' :func:`content_hash` values, computed once per push.

    A sale dated outside the trust window is flagged ``clock_skew`` and counts on the school
    day it was received: a till whose clock is wrong must not move spending into another
    day's limit. Times are compared as epoch floats (cheap, and they never overflow); the
    window never reaches past what :mod:`.bounds` can store, so a trusted time always has a
    school day and only a skewed one may need clamping."""
    now = trust.received_at.timestamp()
    earliest = max(now - trust.behind.total_seconds(), bounds.EARLIEST_EPOCH)
    latest = min(now + trust.ahead.total_seconds(), bounds.LATEST_EPOCH)
    received_day = business_day(trust.received_at, tz)
    out = []
    for i, (s, h) in enumerate(zip(sales, digests, strict=True)):
        moment = s.created_at.timestamp()
        skewed = not earliest <= moment <= latest
        stored = None
        if skewed:
            day = received_day
            clamped = bounds.storable(s.created_at, moment)
            stored = None if clamped is s.created_at else clamped
        else:
            day = business_day(s.created_at, tz)
        out.append(PreparedSale(
            sale=s, index=i, digest=h, lines=line_dicts(s), day=day, moment=moment,
            adds_up=s.total == s.lines_total(), posting_id=new_id("pst") if s.total else None,
            skewed=skewed, stored_at=stored))
    return out


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
    refunded_by: str | None  # the void's ref, or "reversal": see ``sale_refunds``
    business_day: str


@dataclass(slots=True)
class NewSale:
    """The outcome of a sale this batch records: a new ``sales`` row, and maybe a posting.

    It answers the same questions as :class:`StoredSale`, so a replay or a void later in the
    same batch is judged exactly as it would be in the next batch.
    """

    prepared: PreparedSale
    status: str
    code: str | None
    detail: str | None
    flags: list[str]
    balance_after: int | None
    refunded_by: str | None = None

    @property
    def posted(self) -> bool:
        """Its posting (``prepared.posting_id``) is written: applied, and not a total of 0."""
        return self.status == "applied" and self.prepared.posting_id is not None

    @property
    def ref(self) -> str:
        return self.prepared.sale.ref

    @property
    def kind(self) -> str:
        return self.prepared.sale.kind

    @property
    def content_hash(self) -> str:
        return self.prepared.digest

    @property
    def wallet_id(self) -> str:
        return self.prepared.sale.wallet_id

    @property
    def credential_uid(self) -> str | None:
        return self.prepared.sale.credential_uid

    @property
    def lines(self) -> list[dict[str, Any]]:
        return self.prepared.lines

    @property
    def total(self) -> int:
        return self.prepared.sale.total

    @property
    def business_day(self) -> str:
        return self.prepared.day


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
    overdraft_limit: int
    max_sale: int                              # the school's offline_max_sale
    wallets: dict[str, WalletState]            # this school's, locked
    foreign_wallets: set[str]                  # exist, but in another school
    credentials: dict[str, CredentialState]    # this school's, by UID
    cashiers: set[str]
    prices: dict[str, list[tuple[float, int]]]  # product -> [(valid_from epoch s, price)] asc
    stored: dict[str, StoredSale | NewSale]    # by ref: batch refs and void targets
    conflicts: dict[str, set[str]]             # ref -> content hashes kept as conflicts
    seqs: dict[int, str]                       # this device's seq -> ref, for batch seqs
    day_spend: dict[tuple[str, str], int]      # (wallet, day) -> spent, for limited wallets
    # v1.1: every restriction span of the batch's wallets that ever had one, and the category
    # and allergens of the products those wallets' sales name (``restricted_item``).
    restrictions: dict[str, list[Span]] = field(default_factory=dict)
    catalog: dict[str, CatalogItem] = field(default_factory=dict)


@dataclass(slots=True)
class BatchEffects:
    """Everything the batch writes, gathered so the writes can be a few bulk statements."""

    new_sales: dict[str, NewSale] = field(default_factory=dict)  # by ref, in batch order
    new_conflicts: list[PreparedSale] = field(default_factory=list)
    new_seqs: dict[int, str] = field(default_factory=dict)
    # Voids applied: (refunded sale's ref, void's ref, amount), each a ``sale_refunds`` row.
    refunds: list[tuple[str, str, int]] = field(default_factory=list)
    wallet_deltas: dict[str, int] = field(default_factory=dict)


_CONFLICT_WORDS = "this ref was already used with different content"
_REJECT_WORDS = {
    "wallet_unknown": "no wallet with this ID exists",
    "wallet_other_school": "the wallet belongs to another school",
    "wallet_closed": "the wallet is closed",
    "total_mismatch": "total does not equal the sum of quantity x unit_price",
    "void_target_unknown": "the voided sale is unknown or was not applied",
    "void_mismatch": "the void does not repeat the voided sale's wallet, bracelet, lines and total",
    "void_twice": "the sale was already voided or reversed",
    "product_unknown": "a line names a product this school does not have",
    "cashier_unknown": "the cashier is not one of this school's cashiers",
    "seq_reused": "this device already used that seq for another sale",
    bounds.CODE: bounds.WORDS,
}


Result = dict[str, Any]  # one entry of the response's ``results``, exactly as sent


def _result(ref: str, status: str, flags: list[str] | None = None,
            balance_after: int | None = None, code: str | None = None,
            detail: str | None = None, original_status: str | None = None) -> Result:
    out: Result = {"ref": ref, "status": status, "flags": list(flags or ()),
                   "balance_after": balance_after, "code": code, "detail": detail}
    if original_status is not None:  # only replays carry it
        out["original_status"] = original_status
    return out


def judge_batch(ctx: BatchContext, batch: list[PreparedSale]) -> tuple[list[Result], BatchEffects]:
    effects = BatchEffects()
    return [_judge_one(ctx, effects, p) for p in batch], effects


def _judge_one(ctx: BatchContext, fx: BatchEffects, p: PreparedSale) -> Result:
    sale = p.sale
    prior = ctx.stored.get(sale.ref)
    kept = ctx.conflicts.setdefault(sale.ref, set()) if prior is not None else ()
    match verdict(prior.content_hash if prior else None, p.digest, kept):
        case Verdict.REPLAY:
            assert prior is not None
            _claim_seq(ctx, fx, sale)  # a till re-sending another till's sale: its seq too
            return _result(sale.ref, "duplicate", prior.flags, prior.balance_after, prior.code,
                           prior.detail, original_status=prior.status)
        case Verdict.CONFLICT_REPLAY:
            _claim_seq(ctx, fx, sale)
            return _result(sale.ref, "duplicate", detail=_CONFLICT_WORDS,
                           original_status="conflict")
        case Verdict.CONFLICT:
            ctx.conflicts[sale.ref].add(p.digest)
            _claim_seq(ctx, fx, sale)
            fx.new_conflicts.append(p)
            return _result(sale.ref, "conflict", detail=_CONFLICT_WORDS)
        case Verdict.FIRST:
            pass

    owner = ctx.seqs.get(sale.seq)
    if owner is not None and owner != sale.ref:
        return _record(ctx, fx, p, reject="seq_reused")
    _claim_seq(ctx, fx, sale)

    code = _reject_code(ctx, p)
    if code is not None:
        return _record(ctx, fx, p, reject=code)
    return _apply(ctx, fx, p)


def _claim_seq(ctx: BatchContext, fx: BatchEffects, sale: Sale) -> None:
    """Every seq a device sends is accounted for (``acked_seq`` moves past it), unless it
    already names another of this device's sales."""
    if sale.seq not in ctx.seqs:
        ctx.seqs[sale.seq] = sale.ref
        fx.new_seqs[sale.seq] = sale.ref


def _reject_code(ctx: BatchContext, p: PreparedSale) -> str | None:
    sale = p.sale
    if sale.cashier_id not in ctx.cashiers:
        return "cashier_unknown"
    wallet = ctx.wallets.get(sale.wallet_id)
    if wallet is None:
        return "wallet_other_school" if sale.wallet_id in ctx.foreign_wallets else "wallet_unknown"
    if wallet.status == "closed":
        return "wallet_closed"
    if not p.adds_up:
        return "total_mismatch"
    if any(line.product_id not in ctx.prices for line in sale.lines):
        return "product_unknown"
    if sale.kind == "void":
        target = ctx.stored.get(sale.voids or "")
        if target is None or target.kind != "sale" or target.status != "applied":
            return "void_target_unknown"
        if target.refunded_by is not None:
            return "void_twice"
        if (target.wallet_id != sale.wallet_id or target.credential_uid != sale.credential_uid
                or target.total != sale.total or target.lines != p.lines):
            return "void_mismatch"
    delta = -sale.total if sale.kind == "sale" else sale.total
    if not bounds.balance_holds(wallet.balance + delta):
        return bounds.CODE
    return None


def _apply(ctx: BatchContext, fx: BatchEffects, p: PreparedSale) -> Result:
    sale = p.sale
    wallet = ctx.wallets[sale.wallet_id]
    flags: list[str] = []
    if sale.kind == "sale":
        delta = -sale.total
        flags = _sale_flags(ctx, p, wallet)
        spend = (sale.wallet_id, p.day), sale.total
    else:
        delta = sale.total
        target = ctx.stored[sale.voids or ""]
        target.refunded_by = sale.ref
        fx.refunds.append((target.ref, sale.ref, sale.total))
        spend = (sale.wallet_id, target.business_day), -sale.total
    if p.skewed:
        flags.append("clock_skew")
    wallet.balance += delta
    if sale.kind == "sale" and wallet.balance < -ctx.overdraft_limit:
        flags.insert(0, "overdraft")
    if wallet.daily_limit is not None:
        key, amount = spend
        ctx.day_spend[key] = ctx.day_spend.get(key, 0) + amount
    fx.wallet_deltas[sale.wallet_id] = fx.wallet_deltas.get(sale.wallet_id, 0) + delta
    return _record(ctx, fx, p, flags=flags, balance_after=wallet.balance)


def _sale_flags(ctx: BatchContext, p: PreparedSale, wallet: WalletState) -> list[str]:
    sale = p.sale
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
    if limit is not None and ctx.day_spend.get((sale.wallet_id, p.day), 0) + sale.total > limit:
        flags.append("daily_limit_exceeded")
    if sale.total > ctx.max_sale:  # a till refuses these; stale settings, or not a real till
        flags.append("sale_cap_exceeded")
    if any(line.unit_price != price_at(ctx.prices[line.product_id], p.moment)
           for line in sale.lines):
        flags.append("price_mismatch")
    spans = ctx.restrictions.get(sale.wallet_id)
    if spans and blocked_lines(p.lines, in_force(spans, p.moment), ctx.catalog):
        flags.append("restricted_item")  # a till on a snapshot older than the restriction
    return flags


def _record(ctx: BatchContext, fx: BatchEffects, p: PreparedSale, *, reject: str | None = None,
            flags: list[str] | None = None, balance_after: int | None = None) -> Result:
    status = "rejected" if reject else "applied"
    detail = _REJECT_WORDS[reject] if reject else None
    if p.stored_at is not None:  # keep the till's own words, which the row cannot hold
        note = (f"created_at {p.sale.created_at.isoformat()} is beyond the server's calendar; "
                f"stored as {p.stored_at.isoformat()}")
        detail = f"{detail}; {note}" if detail else note
    flags = flags or []
    ctx.stored[p.sale.ref] = fx.new_sales[p.sale.ref] = NewSale(
        prepared=p, status=status, code=reject, detail=detail, flags=flags,
        balance_after=balance_after)
    return _result(p.sale.ref, status, flags, balance_after, reject, detail)


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
