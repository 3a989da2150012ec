"""Server migrations up and down from every released revision, on SQLite and PostgreSQL, with
data in the tables.

For each revision R: a database is migrated to R and filled by SQL written for the schema at R
(the code of that time is gone; :func:`fill` writes what it wrote: a school with wallets,
bracelets, a product, a cashier, a device, top-ups, sales, a void, a rejected and a flagged
sale, and from 0002 on a gateway payment, sessions, audit and review rows, and so on). Then:

1. up to head: every row is still there or carried into its new home (0003 drops the running
   day totals, 0004 marks the open exceptions, 0005 turns ``voided_by`` into a refund link,
   top-ups into money operations and payment events into payments, 0007 numbers the
   products; 0012 only adds indexes), and ``audit-ledger`` is clean;
2. down to the revision before R (so each downgrade step runs with its own tables full): the
   rows the older schema has are kept, and what a migration moved comes back (``voided_by``,
   the day totals);
3. up to head again: the same as 1.

One database per kind and revision (PostgreSQL: one database for the module, its schema dropped
and made again between revisions).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from sync_server.ledger.audit import audit
from sync_server.storage.engine import create_engine
from sync_server.storage.migrate import alembic_config
from tests.conftest import PG_ADMIN_URL, _pg_database_url, _pg_exec, _pg_reachable

REVISIONS = [r.revision for r in reversed(list(
    ScriptDirectory.from_config(alembic_config()).walk_revisions()))]
HEAD = REVISIONS[-1]

S, D, U = "sch_mig", "dev_mig", "usr_mig"
W1, W2 = "wal_mig_1", "wal_mig_2"
UID1, UID2 = "04A1B2C3D4E5F6", "04B0B0B0B0B0B0"
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
DAY = "2026-11-20"
LINE = [{"product_id": "prd_mig", "name": "Water 330ml", "quantity": 2, "unit_price": 150}]


# Every applied sale and the void are at 12:xx Riyadh on DAY: 2 + 1 - 1 + 1 waters.
ROLLUP_ITEM = {"quantity": 3, "amount": 300 + 150 - 150 + 200}


def rollup_nets(rev: str) -> dict[str, int]:
    """Each wallet's net on DAY (all postings are on it): its balance."""
    return {W1: 4700, W2: 1300 if rev >= "0002" else 800}


def _before(rev: str) -> str | None:
    i = REVISIONS.index(rev)
    return REVISIONS[i - 1] if i else None


def fill(c: sa.Connection, rev: str) -> None:
    """The rows a server at ``rev`` held, in that revision's own columns (a column the schema
    does not have yet is left out; a table it does not have is not written)."""
    md = sa.MetaData()
    md.reflect(c)
    sqlite = c.dialect.name == "sqlite"

    def at(minutes: int = 0) -> datetime:
        moment = T0 + timedelta(minutes=minutes)
        return moment.replace(tzinfo=None) if sqlite else moment  # naive UTC on SQLite

    def put(table: str, *rows: dict[str, Any]) -> None:
        t = md.tables[table]
        for row in rows:
            c.execute(sa.insert(t).values({k: v for k, v in row.items() if k in t.c}))

    payments = rev >= "0002"
    put("schools", {"school_id": S, "name": "Migration School", "currency": "SAR",
                    "timezone": "Asia/Riyadh", "offline_max_sale": 5000,
                    "offline_max_unsynced_total": 200000, "offline_max_hours": 72,
                    "overdraft_limit": 0, "version": 9, "settings_version": 1,
                    "snapshot_epoch": "e1", "created_at": at()})
    put("accounts", *({"account_id": a, "school_id": S, "kind": k, "created_at": at()}
                      for a, k in ((f"{S}:revenue", "revenue"),
                                   (f"{S}:topup_clearing", "topup_clearing"),
                                   (f"{S}:adjustments", "adjustments"),
                                   (W1, "wallet"), (W2, "wallet"))))
    put("admin_users", {"user_id": U, "email": "admin@mig.test", "name": "Admin",
                        "password_hash": "$argon2id$x", "role": "school_admin", "school_id": S,
                        "active": True, "created_at": at(), "language": "ar"})
    put("cashiers", {"cashier_id": "csh_mig", "school_id": S, "name": "Amal",
                     "pin_hash": "$argon2id$y", "active": True, "version": 3,
                     "created_at": at()})
    put("products", {"product_id": "prd_mig", "school_id": S, "name": "Water 330ml",
                     "price": 150, "category": "Drinks", "active": True, "version": 4,
                     "created_at": at(), "allergens": [], "position": 1})
    put("product_prices", {"product_id": "prd_mig", "school_id": S, "price": 150,
                           "valid_from": datetime(2000, 1, 1) if sqlite
                           else datetime(2000, 1, 1, tzinfo=UTC)})
    put("devices", {"device_id": D, "school_id": S, "name": "Counter 1", "token_hash": "a" * 64,
                    "status": "active", "enrolled_at": at(), "last_seen_at": at(30),
                    "last_push_at": at(30), "app_version": "cafeteria-pos-terminal/0.1.0",
                    "acked_seq": 5, "max_seq": 5})
    put("enrollment_codes", {"code_hash": "b" * 64, "school_id": S, "created_at": at(),
                             "expires_at": at(60 * 24), "used_at": at(1), "device_id": D})
    put("wallets",
        {"wallet_id": W1, "school_id": S, "display_name": "Sara A.", "student_number": "N1",
         "grade": "Grade 3", "homeroom": "3A", "balance": 4700, "daily_limit": 1500,
         "status": "active", "version": 5, "created_at": at(), "updated_at": at()},
        {"wallet_id": W2, "school_id": S, "display_name": "Omar K.", "student_number": "N2",
         "grade": "Grade 5", "balance": 1300 if payments else 800, "daily_limit": None,
         "status": "active", "version": 6, "created_at": at(), "updated_at": at()})
    put("credentials",
        {"school_id": S, "uid": UID1, "wallet_id": W1, "status": "active",
         "assigned_at": at(), "version": 7},
        {"school_id": S, "uid": UID2, "wallet_id": W2, "status": "blocked",
         "assigned_at": at(), "blocked_at": at(5), "version": 8})

    postings = [("p1", "topup", f"{S}:topup_clearing", W1, 5000, None, "admin"),
                ("p2", "sale", W1, f"{S}:revenue", 300, "ref-a", None),
                ("p3", "sale", W1, f"{S}:revenue", 150, "ref-b", None),
                ("p4", "void", f"{S}:revenue", W1, 150, "ref-v", None),
                ("p5", "sale", W2, f"{S}:revenue", 200, "ref-f", None),
                ("p6", "topup", f"{S}:topup_clearing", W2, 1000, None, "admin")]
    if payments:
        postings.append(("p7", "topup", f"{S}:topup_clearing", W2, 500, None, None))
    put("postings", *({"posting_id": p, "school_id": S, "kind": k, "from_account": f,
                       "to_account": t, "amount": a, "sale_ref": ref, "occurred_at": at(i),
                       "posted_at": at(i), "memo": "cash" if actor else None, "actor": actor}
                      for i, (p, k, f, t, a, ref, actor) in enumerate(postings)))

    def sale(ref: str, seq: int, **over: Any) -> dict[str, Any]:
        return {"school_id": S, "ref": ref, "device_id": D, "seq": seq, "kind": "sale",
                "voids_ref": None, "created_at": at(10 + seq), "received_at": at(30),
                "cashier_id": "csh_mig", "wallet_id": W1, "credential_uid": UID1,
                "lines": LINE, "total": 300, "offline": True, "status": "applied",
                "code": None, "detail": None, "flags": [], "balance_after": None,
                "content_hash": f"h-{ref}", "txn_id": None, "voided_by": None,
                "business_day": DAY, "needs_review": False, **over}

    put("sales",
        sale("ref-a", 1, txn_id="p2", balance_after=4700),
        sale("ref-b", 2, total=150, lines=[{**LINE[0], "quantity": 1}], txn_id="p3",
             voided_by="ref-v", balance_after=4550),
        sale("ref-v", 3, kind="void", voids_ref="ref-b", total=150,
             lines=[{**LINE[0], "quantity": 1}], txn_id="p4", balance_after=4700),
        sale("ref-r", 4, total=999, status="rejected", code="total_mismatch",
             needs_review=True),
        sale("ref-f", 5, wallet_id=W2, credential_uid="04FFFFFFFFFFFF", total=200,
             lines=[{**LINE[0], "quantity": 1, "unit_price": 200}], txn_id="p5",
             flags=["credential_mismatch", "price_mismatch"], needs_review=True,
             balance_after=800))
    put("device_seqs", *({"device_id": D, "seq": n, "school_id": S, "ref": ref}
                         for n, ref in enumerate(("ref-a", "ref-b", "ref-v", "ref-r",
                                                  "ref-f"), 1)))
    put("sale_conflicts", {"school_id": S, "ref": "ref-a", "device_id": D, "seq": 1,
                           "content_hash": "h-other", "payload": {"ref": "ref-a", "total": 1},
                           "received_at": at(31)})
    if rev < "0003":
        put("wallet_day_spend", {"wallet_id": W1, "day": DAY, "school_id": S, "amount": 300},
            {"wallet_id": W2, "day": DAY, "school_id": S, "amount": 200})
    if payments:
        put("admin_sessions", {"session_hash": "c" * 64, "user_id": U, "csrf_token": "t",
                               "school_id": S, "created_at": at(), "last_seen_at": at(),
                               "expires_at": at(600)})
        put("audit_log", {"school_id": S, "at": at(2), "actor_id": U,
                          "actor_email": "admin@mig.test", "action": "wallet.topup",
                          "target_type": "wallet", "target_id": W1, "before": {"balance": 0},
                          "after": {"balance": 5000}, "client": "127.0.0.1"})
        put("payment_events", {"event_id": "evt_1", "school_id": S,
                               "event_type": "payment.completed", "wallet_id": W2,
                               "amount": 500, "currency": "SAR", "reference": "R1",
                               "created_at": at(40), "received_at": at(40),
                               "status": "credited", "flags": [], "balance_after": 1300,
                               "txn_id": "p7", "content_hash": "h-evt", "payload": {},
                               "payment_id": "pay_mig", "source": "webhook"})
        put("payment_conflicts", {"event_id": "evt_1", "school_id": S, "content_hash": "h-2",
                                  "payload": {"amount": 9}, "received_at": at(41)})
        put("credential_events", {"school_id": S, "uid": UID2, "wallet_id": W2,
                                  "action": "blocked", "at": at(5), "actor_id": U})
        put("seq_gap_reviews", {"device_id": D, "seq": 9, "school_id": S,
                                "reviewed_at": at(50), "reviewed_by": U,
                                "review_note": "till replaced"})
    if rev >= "0005":
        put("money_ops", *({"op_id": f"op_{p}", "school_id": S, "idem_key": f"k-{p}",
                            "content_hash": "", "kind": "topup", "wallet_id": w, "amount": a,
                            "posting_id": p, "reason": "cash", "actor": "admin",
                            "created_at": at()}
                           for p, w, a in (("p1", W1, 5000), ("p6", W2, 1000))))
        put("sale_refunds", {"school_id": S, "sale_ref": "ref-b", "kind": "void",
                             "void_ref": "ref-v", "amount": 150, "refunded_at": at(30)})
        put("payments", {"payment_id": "pay_mig", "school_id": S, "reference": "R1",
                         "wallet_id": W2, "currency": "SAR", "amount": 500,
                         "state": "completed", "credited": 500, "debited": 0,
                         "credit_txn_id": "p7", "created_at": at(40), "updated_at": at(40),
                         "check_attempts": 0})
    if rev >= "0006":
        put("login_attempts", {"account": "admin@mig.test", "address": "127.0.0.1",
                               "at": at(3), "succeeded": False})
        put("server_secrets", {"name": "csrf", "value": "s" * 40, "created_at": at()})
    if rev >= "0007":
        put("wallet_restrictions", {"school_id": S, "wallet_id": W1, "kind": "allergen",
                                    "value": "nuts", "since": at(), "set_by": U})
    if rev >= "0008":
        put("enroll_failures", {"address": "10.0.0.9", "at": at(2)})
    if rev >= "0010":
        put("credential_events", {"school_id": S, "uid": UID1, "wallet_id": W1,
                                  "action": "assigned", "at": at(), "actor_id": U})
        put("bracelets",
            {"school_id": S, "uid": UID1, "state": "delivered", "wallet_id": W1,
             "received_at": at(), "updated_at": at(1), "delivered_at": at(1),
             "delivered_by": U},
            {"school_id": S, "uid": UID2, "state": "blocked", "wallet_id": W2,
             "received_at": at(), "updated_at": at(5)},
            {"school_id": S, "uid": "04C0C0C0C0C0C0", "state": "in_stock",
             "batch_id": "imp_mig", "received_at": at(), "updated_at": at()})
        put("roster_imports", {"import_id": "imp_mig", "school_id": S, "kind": "bracelets",
                               "at": at(), "actor_id": U, "actor_email": "admin@mig.test",
                               "filename": "batch.csv", "rows_total": 1, "rows_ok": 1,
                               "rows_failed": 0, "applied": True,
                               "report": [{"row": 2, "status": "ok"}]})
        put("password_resets", {"token_hash": "d" * 64, "user_id": U, "created_by": U,
                                "created_at": at(), "expires_at": at(60)})
        put("webhook_endpoints", {"endpoint_id": "whe_mig", "school_id": S,
                                  "url": "https://parents.example/hook", "secret": "s" * 32,
                                  "event_types": ["wallet.low_balance"], "active": True,
                                  "created_at": at(), "created_by": U, "updated_at": at()})
        put("webhook_events", {"event_id": "evt_out_mig", "school_id": S,
                               "event_type": "wallet.low_balance", "data": {"wallet_id": W1},
                               "dedupe_key": f"low_balance:{W1}:{DAY}", "created_at": at(9)})
        put("webhook_deliveries", {"delivery_id": "whd_mig", "event_id": "evt_out_mig",
                                   "endpoint_id": "whe_mig", "school_id": S,
                                   "state": "pending", "attempts": 1,
                                   "next_attempt_at": at(12), "last_status": 500,
                                   "created_at": at(9)})
        put("webhook_attempts", {"delivery_id": "whd_mig", "school_id": S, "at": at(10),
                                 "status_code": 500, "duration_ms": 40})
        put("outbound_emails", {"email_id": "eml_mig", "school_id": S, "kind": "low_balance",
                                "dedupe_key": f"low_balance:{W1}:{DAY}",
                                "to_address": "parent@mig.test", "subject": "Low balance",
                                "body_text": "...", "language": "ar", "state": "pending",
                                "created_at": at(9)})
    if rev >= "0011":  # the report rollups as the ledger kept them (what 0011 backfills)
        put("sales_item_days", {"school_id": S, "business_day": DAY, "hour": 12,
                                "product_id": "prd_mig", "name": "Water 330ml",
                                **ROLLUP_ITEM})
        put("wallet_day_nets", *({"wallet_id": w, "day": DAY, "school_id": S, "net": n}
                                 for w, n in rollup_nets(rev).items()))


def head_counts(rev: str) -> dict[str, int]:
    """Rows per table at head after filling at ``rev``: what was written, or carried."""
    since = {"admin_sessions": "0002", "audit_log": "0002", "payment_events": "0002",
             "payment_conflicts": "0002", "credential_events": "0002",
             "seq_gap_reviews": "0002", "payments": "0002", "login_attempts": "0006",
             "server_secrets": "0006", "wallet_restrictions": "0007",
             "enroll_failures": "0008", "password_resets": "0010",
             "roster_imports": "0010", "webhook_endpoints": "0010", "webhook_events": "0010",
             "webhook_deliveries": "0010", "webhook_attempts": "0010",
             "outbound_emails": "0010"}
    counts = {"schools": 1, "accounts": 5, "admin_users": 1, "cashiers": 1, "products": 1,
              "product_prices": 1, "devices": 1, "enrollment_codes": 1, "wallets": 2,
              "credentials": 2, "postings": 7 if rev >= "0002" else 6, "sales": 5,
              "device_seqs": 5, "sale_conflicts": 1, "money_ops": 2, "sale_refunds": 1}
    counts.update({t: int(rev >= r) for t, r in since.items()})
    # 0010 records each credential in the inventory, and gives one with no history an
    # "assigned" event; filled at 0010 itself, the rows were written as that schema has them.
    counts["credential_events"] = 2
    counts["bracelets"] = 3 if rev >= "0010" else 2
    # 0011 derives its rollups from the sales and postings, whatever revision wrote them.
    counts["sales_item_days"], counts["wallet_day_nets"] = 1, 2
    return counts


def _table_counts(c: sa.Connection) -> dict[str, int]:
    names = [n for n in sa.inspect(c).get_table_names() if n != "alembic_version"]
    return {n: c.execute(sa.text(f'SELECT COUNT(*) FROM "{n}"')).scalar_one() for n in names}


def _sales_and_money(c: sa.Connection, rev: str) -> None:
    sales = {r.ref: (r.status, r.total, bool(r.needs_review)) for r in c.execute(sa.text(
        "SELECT ref, status, total, needs_review FROM sales"))}
    assert sales == {"ref-a": ("applied", 300, False), "ref-b": ("applied", 150, False),
                     "ref-v": ("applied", 150, False), "ref-r": ("rejected", 999, True),
                     "ref-f": ("applied", 200, True)}
    balances = dict(c.execute(sa.text("SELECT wallet_id, balance FROM wallets")).all())
    assert balances == {W1: 4700, W2: 1300 if rev >= "0002" else 800}
    refunds = [tuple(r) for r in c.execute(sa.text(
        "SELECT sale_ref, kind, void_ref, op_id, amount FROM sale_refunds"))]
    assert refunds == [("ref-b", "void", "ref-v", None, 150)]
    assert c.execute(sa.text("SELECT position FROM products")).scalars().all() == [1]
    kept = c.execute(sa.text("SELECT grade, daily_limit, student_number FROM wallets"
                             " WHERE wallet_id = :w"), {"w": W1}).one()
    assert tuple(kept) == ("Grade 3", 1500, "N1")
    item = c.execute(sa.text("SELECT business_day, hour, product_id, name, quantity, amount"
                             " FROM sales_item_days")).one()
    assert tuple(item) == (DAY, 12, "prd_mig", "Water 330ml", *ROLLUP_ITEM.values())
    nets = {r.wallet_id: (r.day, r.net) for r in c.execute(sa.text(
        "SELECT wallet_id, day, net FROM wallet_day_nets"))}
    assert nets == {w: (DAY, n) for w, n in rollup_nets(rev).items()}


def _at_head(c: sa.Connection, rev: str) -> None:
    """After the first upgrade: every row written at ``rev`` is there, or carried."""
    assert _table_counts(c) == head_counts(rev)
    _sales_and_money(c, rev)
    ops = {tuple(r) for r in c.execute(sa.text(
        "SELECT posting_id, kind, wallet_id, amount FROM money_ops"))}
    assert ops == {("p1", "topup", W1, 5000), ("p6", "topup", W2, 1000)}
    pays = {r.reference: (r.state, r.credited, r.debited, r.credit_txn_id)
            for r in c.execute(sa.text(
                "SELECT reference, state, credited, debited, credit_txn_id FROM payments"))}
    assert pays == ({"R1": ("completed", 500, 0, "p7")} if rev >= "0002" else {})
    if rev >= "0002":
        linked = c.execute(sa.text("SELECT p.reference FROM payment_events e JOIN payments p"
                                   " ON p.payment_id = e.payment_id")).scalars().all()
        assert linked == ["R1"]


def _again(c: sa.Connection, rev: str, survived: set[str]) -> None:
    """After down and up again: the tables the older schema has kept their rows; what lived
    only in the dropped tables is gone (a downgrade cannot keep it), and the ledger still
    balances (checked by the caller's audit)."""
    counts, survived = _table_counts(c), survived & set(head_counts(rev))
    assert {t: counts[t] for t in survived} == {t: head_counts(rev)[t] for t in survived}
    _sales_and_money(c, rev)


def _below(c: sa.Connection, rev: str, down: str) -> None:
    """At ``down`` (the revision before ``rev``), after a round trip through head."""
    tables = set(sa.inspect(c).get_table_names()) - {"alembic_version"}
    want = {t: n for t, n in head_counts(rev).items() if t in tables}
    if down < "0003":
        want["wallet_day_spend"] = 2
    assert _table_counts(c) == want
    if down < "0005":
        marks = dict(c.execute(sa.text(
            "SELECT ref, voided_by FROM sales WHERE voided_by IS NOT NULL")).all())
        assert marks == {"ref-b": "ref-v"}
    if down < "0003":
        spend = {tuple(r) for r in c.execute(sa.text(
            "SELECT wallet_id, day, amount FROM wallet_day_spend"))}
        assert spend == {(W1, DAY, 300), (W2, DAY, 200)}
    balances = dict(c.execute(sa.text("SELECT wallet_id, balance FROM wallets")).all())
    assert balances == {W1: 4700, W2: 1300 if rev >= "0002" else 800}


# ------------------------------------------------------------------ databases


@pytest.fixture(scope="module")
def pg_scratch() -> Iterator[str]:
    """One PostgreSQL database for the module; each test resets its schema."""
    problem = _pg_reachable()
    if problem:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL} ({problem}); start it or set "
                    "POS_TEST_PG_URL=postgresql://user@host:port/db to run these cases")
    name = f"pos_mig_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_exec(f'CREATE DATABASE "{name}"'))
    yield _pg_database_url(name)
    asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'server.db'}"
    url: str = request.getfixturevalue("pg_scratch")

    async def reset() -> None:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(sa.text("DROP SCHEMA public CASCADE"))
                await conn.execute(sa.text("CREATE SCHEMA public"))
        finally:
            await engine.dispose()

    asyncio.run(reset())
    return url


# ------------------------------------------------------------------ the test


async def _migrate(engine: Any, direction: str, target: str) -> None:
    step = command.upgrade if direction == "up" else command.downgrade
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: step(alembic_config(c), target))


async def _audit_is_clean(engine: Any) -> None:
    report = await audit(engine)
    findings = {k: v for k, v in report["schools"][0].items() if isinstance(v, list | dict) and v}
    assert report["ok"] and not findings, str(findings)


@pytest.mark.parametrize("rev", REVISIONS)
def test_migrations_keep_the_data_of_each_revision(rev: str, empty_db: str) -> None:
    down = _before(rev) or rev

    async def run() -> None:
        engine = create_engine(empty_db)
        try:
            await _migrate(engine, "up", rev)
            async with engine.begin() as conn:
                await conn.run_sync(fill, rev)
            await _migrate(engine, "up", "head")
            async with engine.connect() as conn:
                await conn.run_sync(_at_head, rev)
            await _audit_is_clean(engine)
            await _migrate(engine, "down", down)
            async with engine.connect() as conn:
                await conn.run_sync(_below, rev, down)
                survived = set(await conn.run_sync(
                    lambda c: sa.inspect(c).get_table_names())) - {"alembic_version"}
            await _migrate(engine, "up", "head")
            async with engine.connect() as conn:
                await conn.run_sync(_again, rev, survived)
            await _audit_is_clean(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_every_revision_is_covered() -> None:
    """A new migration joins REVISIONS by itself; its tables need rows in :func:`fill` (and
    counts in :func:`head_counts`), or this fails: docs/upgrading.md."""
    assert HEAD == "0012", ("a migration after 0012: give its tables rows in fill() and "
                            "head_counts(), then move this line to the new head")
