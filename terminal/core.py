"""The terminal's business façade: the only thing the CLI and the cashier app call.

Everything a cashier can do goes through :class:`Terminal`, so the command line and the GUI
cannot drift apart in their rules. It is headless (no Qt) and cheap to import: the sync stack
(httpx, pydantic) loads only when a method needs the network, which keeps ``pos-terminal sell``
fast to start.

Threads: each thread gets its own SQLite connection (the GUI thread records sales while the
sync worker pushes); WAL lets them overlap, and every write transaction is short.

Changes: every mutation tells the listeners given to :meth:`Terminal.subscribe` what it
changed (:class:`terminal.changes.Change`), after its transaction committed, on the thread
that made it; a read never emits. A sale or a void is ``SALES | SYNC``: besides the sales list
it changes the queue counts, which belong to the sync state. A sync cycle is ``SYNC`` plus
what it moved (see ``SyncReport.changed``); an enrollment is
``ENROLLMENT | SNAPSHOT | SETTINGS | SYNC``; the reader's state ``READER``; this terminal's own
settings ``SETTINGS``; dismissing the sales needing review ``SALES``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlite_utils import Database

from shared.clock import rfc3339, utcnow
from shared.ids import mask_uid, new_ref, normalize_uid
from terminal import settings as local
from terminal.changes import Change, Changes
from terminal.errors import AlreadyEnrolled, NotEnrolled, SaleRefused
from terminal.selling.alerts import Alert, AlertFacts, alerts
from terminal.selling.cart import Cart
from terminal.selling.restrictions import NO_RESTRICTIONS, Item, Restrictions, first_refusal
from terminal.selling.restrictions import item_refusal as restricted
from terminal.selling.rules import Refusal, SaleFacts, check_sale, clock_behind, refusal
from terminal.settings import LocalSettings
from terminal.store import namefold, outbox, snapshot, state
from terminal.store.db import open_database, writing
from terminal.store.outbox import NewEntry
from terminal.store.rows import fetch_all

if TYPE_CHECKING:
    from terminal.sync.cycle import SyncReport

Clock = Callable[[], datetime]

# ``sync_state.auth_problem`` after a 403 whose problem type ends in ``/device-revoked``: the
# school took this terminal out of service, so it stops selling (docs/terminal.md).
REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the cashier sees after a sale or void was durably stored."""

    ref: str
    seq: int
    kind: str
    total: int
    wallet_id: str
    display_name: str
    balance_estimate: int
    created_at: str
    offline: bool

    def cli_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "seq": self.seq, "total": self.total,
                "wallet_id": self.wallet_id, "balance_estimate": self.balance_estimate}


@dataclass(frozen=True, slots=True)
class WalletView:
    wallet_id: str
    display_name: str
    status: str
    credential_status: str | None
    balance_estimate: int
    daily_limit: int | None
    spent_today: int             # counted against the daily limit today, all tills known
    grade: str | None = None
    homeroom: str | None = None
    restrictions: Restrictions = NO_RESTRICTIONS
    # The wallet's active bracelets, masked (``04A1…E580``): with grade and homeroom they tell
    # two students of the same name apart in the lookup, without showing a UID to copy.
    masked_uids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Enrollment:
    device_id: str
    school_id: str
    first_snapshot: SyncReport


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


class Terminal:
    def __init__(self, data_dir: Path | str, *, clock: Clock = utcnow,
                 http_timeout: float | None = None) -> None:
        self.data_dir = Path(data_dir)
        self._clock = clock
        self._http_timeout = http_timeout
        self._local = threading.local()
        self._sync_lock = threading.Lock()
        self._changes = Changes()
        self._live_updates = False   # the cashier app's sync worker holds the event stream
        from terminal.pins import PinAttempts

        self.pin_attempts = PinAttempts()

    # ------------------------------------------------------------------ store

    @property
    def db(self) -> Database:
        db: Database | None = getattr(self._local, "db", None)
        if db is None:
            db = open_database(self.data_dir)
            self._local.db = db
        return db

    def close_thread_store(self) -> None:
        db: Database | None = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    close = close_thread_store

    def subscribe(self, listener: Callable[[Change], None]) -> Callable[[], None]:
        """Call ``listener(change)`` after each committed mutation (see the module docstring);
        returns the function that unsubscribes it."""
        return self._changes.subscribe(listener)

    def _device(self) -> state.Device:
        device = state.get_device(self.db)
        if device is None:
            raise NotEnrolled()
        return device

    # ------------------------------------------------------------------ enrollment & sync

    def enroll(self, server_url: str, code: str, name: str) -> Enrollment:
        """Enroll with a one-time code, then pull the first snapshot."""
        from terminal.sync.client import SyncClient

        existing = state.get_device(self.db)
        if existing is not None:
            raise AlreadyEnrolled(
                f"this data directory is already enrolled as device {existing.device_id}; "
                "use a new --data-dir for another terminal")
        with SyncClient(server_url, **self._client_options()) as client:
            answer = client.enroll(code, name)
        now = self._clock()
        state.save_device(self.db, state.Device(
            device_id=answer.device_id, device_token=answer.device_token,
            school_id=answer.school_id, currency=answer.currency,
            server_url=server_url.rstrip("/"), name=name, enrolled_at=now.isoformat()))
        state.record_contact(self.db, now, ok=True)
        report = self._sync()
        self._changes.emit(Change.ENROLLMENT | Change.SNAPSHOT | Change.SETTINGS | Change.SYNC
                           | report.changed)
        return Enrollment(answer.device_id, answer.school_id, report)

    def sync_once(self, *, pull_only: bool = False, push_only: bool = False) -> SyncReport:
        """One push of the whole queue plus one snapshot pull. Never raises for network
        trouble: the report says what happened (the worker and the CLI decide what to do).
        ``pull_only``: an event said the snapshot changed; an empty push is skipped.
        ``push_only``: the event stream is live and will say when to pull."""
        report = self._sync(pull_only, push_only)
        self._changes.emit(report.changed | Change.SYNC)
        return report

    def _sync(self, pull_only: bool = False, push_only: bool = False) -> SyncReport:
        from terminal.sync.client import SyncClient
        from terminal.sync.cycle import run_cycle

        device = self._device()
        with self._sync_lock, SyncClient(device.server_url, device.device_token,
                                         **self._client_options()) as client:
            return run_cycle(self.db, client, self._clock, pull_only=pull_only,
                             push_only=push_only)

    def set_live_updates(self, live: bool) -> None:
        """The sync worker holds the server's event stream (updates arrive live) or not
        (they come by polling); ``status()["updates"]`` says which. Emits ``SYNC`` when it
        flips, so the status bar redraws. Kept in memory: only the running app streams."""
        if live != self._live_updates:
            self._live_updates = live
            self._changes.emit(Change.SYNC)

    def _client_options(self) -> dict[str, Any]:
        return {} if self._http_timeout is None else {"timeout": self._http_timeout}

    # ------------------------------------------------------------------ selling

    def record_sale(self, cashier_id: str, items: Sequence[tuple[str, int]], *,
                    uid: str | None = None, wallet_id: str | None = None) -> Receipt:
        """Check the offline rules and durably record the sale; returns after COMMIT.

        ``uid`` is the tapped bracelet; ``wallet_id`` is for a student looked up by hand.
        Raises :class:`SaleRefused` (nothing written, no seq used).
        """
        if (uid is None) == (wallet_id is None):
            raise ValueError("give exactly one of uid (bracelet) or wallet_id (by hand)")
        device = self._device()
        db = self.db
        now = self._clock()
        with outbox.immediate_transaction(db) as conn:
            sync = state.get_sync_state(db)
            settings = _settings(sync, device)
            local_now = now.astimezone(_zone(settings.timezone))
            school_day = local_now.date().isoformat()

            cart, unknown, cart_items = self._build_cart(items)
            cashier = snapshot.get_cashier(db, cashier_id)
            credential_found, blocked, credential_uid = True, False, None
            if uid is not None:
                try:
                    credential_uid = normalize_uid(uid)
                except ValueError:
                    credential_uid = None
                credential = snapshot.get_credential(db, credential_uid) \
                    if credential_uid else None
                credential_found = credential is not None
                blocked = credential is not None and credential.status != "active"
                wallet_id = credential.wallet_id if credential else None
            wallet = snapshot.get_wallet(db, wallet_id) if wallet_id else None
            unsettled = outbox.unsettled_spending(conn, wallet.wallet_id,
                                                  wallet.snapshot_epoch) if wallet else 0
            behind = _clock_behind(conn, sync, now, school_day)
            facts = SaleFacts(
                currency=settings.currency,
                device_revoked=sync.auth_problem == REVOKED,
                cashier_known=cashier is not None and cashier.active,
                cart_total=cart.total, cart_empty=cart.is_empty() and not unknown,
                unknown_products=unknown,
                hours_since_sync=_hours_since(sync.last_sync_at, now),
                offline_max_hours=settings.offline_max_hours,
                clock_shows=_shown(now, settings.timezone),
                clock_behind=_shown(behind, settings.timezone) if behind else None,
                credential_found=credential_found and wallet is not None,
                credential_blocked=blocked,
                wallet_status=wallet.status if wallet else None,
                offline_max_sale=settings.offline_max_sale,
                offline_max_unsynced_total=settings.offline_max_unsynced_total,
                unanswered_total=outbox.unanswered_sales_total(conn),
                daily_limit=wallet.daily_limit if wallet else None,
                spent_today=_day_spend(conn, wallet, school_day, settings.timezone)
                if wallet else 0,
                balance=wallet.balance if wallet else 0,
                unsettled_spending=unsettled,
                overdraft_limit=settings.overdraft_limit,
                restriction=first_refusal(cart_items, wallet.restrictions) if wallet else None,
            )
            refused = check_sale(facts)
            if refused is not None:
                raise SaleRefused.because(refused)
            assert wallet is not None
            offline = sync.last_contact_ok is not True
            entry = NewEntry(
                ref=new_ref(), kind="sale", voids=None, created_at=rfc3339(local_now),
                school_day=school_day, cashier_id=cashier_id, wallet_id=wallet.wallet_id,
                credential_uid=credential_uid, lines=cart.wire(), total=cart.total,
                offline=offline)
            seq = outbox.append(conn, entry)
        self._changes.emit(Change.SALES | Change.SYNC)
        return Receipt(ref=entry.ref, seq=seq, kind="sale", total=cart.total,
                       wallet_id=wallet.wallet_id, display_name=wallet.display_name,
                       balance_estimate=wallet.balance - unsettled - cart.total,
                       created_at=entry.created_at, offline=offline)

    def void(self, ref: str, cashier_id: str) -> Receipt:
        """Reverse one sale of this terminal in full (same wallet, lines and total)."""
        device = self._device()
        db = self.db
        now = self._clock()
        with outbox.immediate_transaction(db) as conn:
            sync = state.get_sync_state(db)
            settings = _settings(sync, device)
            local_now = now.astimezone(_zone(settings.timezone))
            cashier = snapshot.get_cashier(db, cashier_id)
            target = outbox.get(conn, ref)
            problem = refusal("device_revoked") if sync.auth_problem == REVOKED else None
            if problem is None and (cashier is None or not cashier.active):
                problem = refusal("cashier_unknown")
            if problem is None:
                problem = _void_problem(conn, sync, target)
            if problem is not None:
                raise SaleRefused.because(problem)
            assert target is not None
            offline = sync.last_contact_ok is not True
            entry = NewEntry(
                ref=new_ref(), kind="void", voids=target.ref, created_at=rfc3339(local_now),
                school_day=local_now.date().isoformat(), cashier_id=cashier_id,
                wallet_id=target.wallet_id, credential_uid=target.credential_uid,
                lines=target.lines, total=target.total, offline=offline)
            seq = outbox.append(conn, entry)
            wallet = snapshot.get_wallet(db, target.wallet_id)
            estimate = (wallet.balance - outbox.unsettled_spending(
                conn, wallet.wallet_id, wallet.snapshot_epoch)) if wallet else 0
        self._changes.emit(Change.SALES | Change.SYNC)
        return Receipt(ref=entry.ref, seq=seq, kind="void", total=entry.total,
                       wallet_id=entry.wallet_id,
                       display_name=wallet.display_name if wallet else "",
                       balance_estimate=estimate, created_at=entry.created_at,
                       offline=offline)

    def void_refusal(self, ref: str) -> Refusal | None:
        """Why the sale ``ref`` cannot be voided (unknown here, a void itself, refused by the
        server, already voided, or the terminal revoked), or ``None`` when it can: the cashier
        app asks before it opens the void dialog. :meth:`void` checks again when it runs."""
        db = self.db
        return _void_problem(db.conn, state.get_sync_state(db), outbox.get(db.conn, ref))

    def item_refusal(self, product_id: str, *, uid: str | None = None,
                     wallet_id: str | None = None) -> Refusal | None:
        """``restricted_item`` when the student (tapped bracelet ``uid``, or ``wallet_id``
        looked up by hand) may not have this product, offline too; the cashier app asks the
        moment an item is added for a tapped student. ``None`` when the student may have it,
        and also when the product or the student is unknown here: the sale itself is then
        refused with the matching reason."""
        wallet = self._wallet_of(uid, wallet_id)
        product = snapshot.get_product(self.db, product_id)
        if wallet is None or product is None:
            return None
        return restricted(_item(product), wallet.restrictions)

    def _wallet_of(self, uid: str | None, wallet_id: str | None) -> snapshot.Wallet | None:
        if uid is not None:
            try:
                credential = snapshot.get_credential(self.db, normalize_uid(uid))
            except ValueError:
                return None
            if credential is None:
                return None
            wallet_id = credential.wallet_id
        return snapshot.get_wallet(self.db, wallet_id) if wallet_id else None

    def _build_cart(self, items: Sequence[tuple[str, int]]) -> tuple[Cart, int, list[Item]]:
        cart, unknown, known = Cart(), 0, []
        for product_id, quantity in items:
            product = snapshot.get_product(self.db, product_id)
            if product is None or not product.active:
                unknown += 1
                continue
            cart.add(product.product_id, product.name, product.price, quantity)
            known.append(_item(product))
        return cart, unknown, known

    # ------------------------------------------------------------------ looking things up

    def verify_pin(self, cashier_id: str, pin: str) -> bool:
        """Check a cashier's PIN against the snapshot's hash (argon2), offline.

        Raises :class:`terminal.pins.PinLockout` while that cashier is locked out after
        repeated wrong PINs (the PIN is then not even checked).
        """
        from terminal.pins import verify_pin_hash

        self.pin_attempts.check(cashier_id)
        cashier = snapshot.get_cashier(self.db, cashier_id)
        ok = (cashier is not None and cashier.active
              and verify_pin_hash(cashier.pin_hash, pin))
        self.pin_attempts.record(cashier_id, ok)
        return ok

    def wallet_for_uid(self, uid: str) -> WalletView | None:
        """What the screen shows when a bracelet is tapped, before the sale."""
        try:
            credential = snapshot.get_credential(self.db, normalize_uid(uid))
        except ValueError:
            return None
        if credential is None:
            return None
        view = self.wallet_view(credential.wallet_id)
        if view is None:
            return None
        return replace(view, credential_status=credential.status)

    def wallet_view(self, wallet_id: str) -> WalletView | None:
        wallet = snapshot.get_wallet(self.db, wallet_id)
        if wallet is None:
            return None
        tz = _settings(state.get_sync_state(self.db), None).timezone
        day = self._clock().astimezone(_zone(tz)).date().isoformat()
        return WalletView(
            wallet_id=wallet.wallet_id, display_name=wallet.display_name, status=wallet.status,
            credential_status=None, balance_estimate=self._estimate(wallet),
            daily_limit=wallet.daily_limit,
            spent_today=_day_spend(self.db.conn, wallet, day, tz),
            grade=wallet.grade, homeroom=wallet.homeroom, restrictions=wallet.restrictions,
            masked_uids=tuple(mask_uid(uid)
                              for uid in snapshot.wallet_bracelets(self.db, wallet.wallet_id)))

    def balance_estimate(self, wallet_id: str) -> int | None:
        wallet = snapshot.get_wallet(self.db, wallet_id)
        return None if wallet is None else self._estimate(wallet)

    def _estimate(self, wallet: snapshot.Wallet) -> int:
        return wallet.balance - outbox.unsettled_spending(self.db.conn, wallet.wallet_id,
                                                          wallet.snapshot_epoch)

    def products(self) -> list[snapshot.Product]:
        return snapshot.list_products(self.db)

    def cashiers(self) -> list[snapshot.Cashier]:
        return snapshot.list_cashiers(self.db)

    def history(self, limit: int = 100) -> list[outbox.OutboxRow]:
        return outbox.recent(self.db.conn, limit)

    def needing_review(self) -> list[outbox.OutboxRow]:
        return outbox.needing_review(self.db.conn)

    def search_wallets(self, text: str, limit: int = 30) -> list[WalletView]:
        """Students whose name contains ``text`` (for a forgotten bracelet); the sale is then
        recorded with ``wallet_id`` and no credential UID. Same-name students sit together,
        in grade and homeroom order, each with grade, homeroom and masked bracelet UIDs so the
        cashier can tell them apart."""
        needle = namefold.fold(text.strip())
        if not needle:
            return []
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self.db.conn.execute(
            "SELECT wallet_id FROM wallets WHERE fold_name(display_name) LIKE ? ESCAPE '\\'"
            " ORDER BY fold_name(display_name), grade, homeroom, display_name, wallet_id"
            " LIMIT ?", (f"%{escaped}%", limit)).fetchall()
        views = [self.wallet_view(r[0]) for r in rows]
        return [v for v in views if v is not None]

    def bracelets(self, limit: int = 200) -> list[tuple[str, str, str]]:
        """``(uid, display_name, status)`` of bracelets in the snapshot: only for the demo
        panel of the simulated reader (a real counter never lists UIDs)."""
        rows = fetch_all(
            self.db.conn, "SELECT c.uid, w.display_name, CASE WHEN c.status != 'active'"
            " THEN c.status ELSE w.status END AS status"
            " FROM credentials c JOIN wallets w USING (wallet_id)"
            " ORDER BY w.display_name, c.uid LIMIT ?", (limit,))
        return [(r["uid"], r["display_name"], r["status"]) for r in rows]

    def alerts(self) -> list[Alert]:
        """Banners for the cashier: device revoked, sales rejected or in conflict (until
        dismissed), offline caps nearly reached, server unreachable."""
        db = self.db
        device = state.get_device(db)
        sync = state.get_sync_state(db)
        settings = _settings(sync, device)
        reviewed = int(state.get_local_setting(db, "reviewed_seq") or 0)
        unreviewed = outbox.review_count(db.conn, after_seq=reviewed)
        now = self._clock()
        behind = self.clock_behind()
        return alerts(AlertFacts(
            currency=settings.currency, enrolled=device is not None,
            server_reachable=sync.last_contact_ok is True,
            ever_contacted=sync.last_contact_at is not None,
            auth_problem=sync.auth_problem,
            unanswered_total=outbox.unanswered_sales_total(db.conn),
            offline_max_unsynced_total=settings.offline_max_unsynced_total,
            hours_since_sync=_hours_since(sync.last_sync_at, now),
            offline_max_hours=settings.offline_max_hours, unreviewed=unreviewed,
            clock_shows=_shown(now, settings.timezone),
            clock_behind=_shown(behind, settings.timezone) if behind else None))

    def selling_stopped(self) -> Refusal | None:
        """Why this terminal may not sell at all, whatever the cart or the bracelet: the
        school revoked it. The cashier app shows this on the sale screen itself; every sale
        and void is refused with the same words until a good answer from the server clears
        it. ``None`` while selling is possible."""
        if state.get_sync_state(self.db).auth_problem == REVOKED:
            return refusal("device_revoked")
        return None

    def clock_behind(self) -> datetime | None:
        """A time this terminal has already seen (the server's, or one of its own sales since
        the last sync) that its clock is behind, or ``None`` when the clock is believable.
        While it is not ``None`` every sale is refused (``offline_too_long``)."""
        db = self.db
        sync = state.get_sync_state(db)
        if state.get_device(db) is None:
            return None
        now = self._clock()
        today = now.astimezone(_zone(_settings(sync, None).timezone)).date().isoformat()
        return _clock_behind(db.conn, sync, now, today)

    def dismiss_review(self) -> None:
        """The cashier has seen the rejected/conflicting sales so far (they stay in history)."""
        last = outbox.last_review_seq(self.db.conn)
        if last is not None:
            state.set_local_setting(self.db, "reviewed_seq", str(last))
            self._changes.emit(Change.SALES)

    def enrolled(self) -> bool:
        return state.get_device(self.db) is not None

    def currency(self) -> str:
        return _settings(state.get_sync_state(self.db), state.get_device(self.db)).currency

    def school_settings(self) -> state.SchoolSettings:
        """The school's settings from the last snapshot (the caps are named ``offline_*`` on
        the wire but apply to every sale of this till); defaults before the first one."""
        return _settings(state.get_sync_state(self.db), state.get_device(self.db))

    def set_reader(self, description: str) -> None:
        """Remember the reader's state for ``status``; emits ``READER`` when it changed."""
        if state.get_local_setting(self.db, "reader") == description:
            return
        state.set_local_setting(self.db, "reader", description)
        self._changes.emit(Change.READER)

    def local_settings(self) -> LocalSettings:
        """This terminal's own settings (language, sound), defaults until changed."""
        db = self.db
        return local.from_text({key: state.get_local_setting(db, key)
                                for key in local.to_text(LocalSettings())})

    def update_local_settings(self, **changes: Any) -> LocalSettings:
        """Change some of this terminal's settings, e.g. ``language="ar"``; a value out of
        range raises ``ValueError`` in plain words and changes nothing. Emits ``SETTINGS``
        when a value actually changed."""
        current = self.local_settings()
        wanted = local.validated(current, changes)
        if wanted == current:
            return current
        stored = local.to_text(wanted)
        with writing(self.db):
            for key, value in stored.items():
                state.set_local_setting(self.db, key, value)
        self._changes.emit(Change.SETTINGS)
        return wanted

    def school_now(self) -> datetime:
        """Now in the school's time zone (from its settings; UTC before the first snapshot),
        as the till shows it."""
        sync = state.get_sync_state(self.db)
        if sync.settings is None:
            return self._clock().astimezone(UTC)
        return self._clock().astimezone(_zone(sync.settings.timezone))

    def status(self) -> dict[str, Any]:
        """The spec's ``status`` document plus what a cashier needs to see on screen (device
        revoked, last error, sales needing review)."""
        db = self.db
        device = state.get_device(db)
        sync = state.get_sync_state(db)
        stats = outbox.queue_stats(db.conn)
        now = self._clock()
        return {
            "enrolled": device is not None,
            "device_id": device.device_id if device else None,
            "server_reachable": sync.last_contact_ok is True,
            "queued": stats.queued,
            "queued_total": stats.queued_total,
            "oldest_unsynced_at": stats.oldest_unsynced_at,
            "last_sync_at": rfc3339(sync.last_sync_at) if sync.last_sync_at else None,
            "snapshot_age_s": int((now - sync.snapshot_at).total_seconds())
            if sync.snapshot_at else None,
            "reader": state.get_local_setting(db, "reader"),
            "school_id": device.school_id if device else None,
            "server_url": device.server_url if device else None,
            "device_revoked": sync.auth_problem is not None,
            "auth_problem": sync.auth_problem,
            "last_error": sync.last_error,
            "last_contact_at": rfc3339(sync.last_contact_at) if sync.last_contact_at else None,
            "acked_seq": sync.acked_seq,
            "last_seq": outbox.last_seq(db.conn),
            "missing_seqs": sync.missing_seqs,
            "needs_review": outbox.review_count(db.conn),
            "refilling": sync.refill_from_seq is not None,
            "refill_from_seq": sync.refill_from_seq,
            "clock_behind": rfc3339(behind) if (behind := self.clock_behind()) else None,
            "updates": "live" if self._live_updates else "polling",
        }


def _item(product: snapshot.Product) -> Item:
    return Item(product.product_id, product.name, product.category, product.allergens)


def _void_problem(conn: sqlite3.Connection, sync: state.SyncState,
                  target: outbox.OutboxRow | None) -> Refusal | None:
    if sync.auth_problem == REVOKED:  # a void could never reach the ledger either
        return refusal("device_revoked")
    if target is None:
        return refusal("void_target_unknown")
    if target.kind != "sale":
        return refusal("void_of_void")
    if target.outcome in outbox.NOT_POSTED:
        return refusal("void_target_not_posted")
    if outbox.void_of(conn, target.ref) is not None:
        return refusal("void_twice")
    return None


def _settings(sync: state.SyncState, device: state.Device | None) -> state.SchoolSettings:
    """The school's settings from the last snapshot; before the first one, the defaults in
    the currency the device enrolled with."""
    if sync.settings is not None:
        return sync.settings
    return state.SchoolSettings(currency=device.currency) if device else state.SchoolSettings()


def _day_spend(conn: sqlite3.Connection, wallet: snapshot.Wallet, school_day: str,
               timezone: str) -> int:
    """What counts against the wallet's daily limit on ``school_day`` (spec v1.1): the
    server's ``spent_today`` when the snapshot row is of that day, plus this terminal's own
    sales not in it. A row of another day (or from a server that does not send the figure)
    says nothing about this day: then every sale of this terminal that day counts."""
    as_of = datetime.fromisoformat(wallet.balance_as_of).astimezone(_zone(timezone))
    covered = wallet.spent_today is not None and as_of.date().isoformat() == school_day
    server = wallet.spent_today if covered and wallet.spent_today is not None else 0
    own = outbox.spent_on_day(conn, wallet.wallet_id, school_day,
                              wallet.snapshot_epoch if covered else None)
    return max(0, server + own)


def _clock_behind(conn: sqlite3.Connection, sync: state.SyncState, now: datetime,
                  today: str) -> datetime | None:
    latest, latest_day = outbox.latest_recorded(conn, sync.synced_seq)
    return clock_behind(now, server_time=sync.server_time, latest_recorded=latest,
                        latest_day=latest_day, today=today)


def _shown(moment: datetime, timezone: str) -> str:
    """A time as the cashier reads it: the school's local date and time, to the minute."""
    return moment.astimezone(_zone(timezone)).strftime("%Y-%m-%d %H:%M")


def _hours_since(moment: datetime | None, now: datetime) -> float | None:
    if moment is None:
        return None
    return max(0.0, (now - moment).total_seconds() / 3600)

