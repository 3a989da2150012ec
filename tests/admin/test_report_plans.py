"""Every query a report or a date-filtered page runs finds its rows through an index.

On a school year (about 1.2 million sales, benchmarks/year.py) a full scan of ``sales`` or
``postings`` is what turns a page from milliseconds into seconds, so these tests request the
real pages from the real app, catch each statement it sends to the database, and EXPLAIN it
with the same parameters: none may scan one of the big tables whole, and each page's main
query must use the index migration 0009 made for it. The tables here are tiny, where a scan is
as good as any index; PostgreSQL is told not to scan (``enable_seqscan = off``) so the plan
shows which index the predicates can use, and SQLite's planner chooses from the schema alone
(there is no ``sqlite_stat1``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from sync_server.storage.engine import create_engine

from .conftest import as_role

# The rollups (0011) are big too: a day's rows per product and hour, a wallet's per day.
BIG = ("sales", "postings", "money_ops", "sales_item_days", "wallet_day_nets")
MONTH = "from=2026-01-01&to=2026-01-31"


@contextmanager
def statements() -> Iterator[list[tuple[str, Any]]]:
    """The SELECTs every engine of this process sends while the block runs."""
    seen: list[tuple[str, Any]] = []

    def note(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
             executemany: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")) and not executemany:
            seen.append((statement, parameters))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", note)


def touches_big(statement: str) -> bool:
    return any(re.search(rf"\b{table}\b", statement) for table in BIG)


def full_scans(plan: str, statement: str, dialect: str) -> list[str]:
    """The big tables the plan reads whole (by name or by the statement's alias for them)."""
    if dialect == "postgresql":
        return re.findall(rf"Seq Scan on ({'|'.join(BIG)})\b", plan)
    names = {t: t for t in BIG}
    for table, alias in re.findall(rf"\b({'|'.join(BIG)}) AS (\w+)", statement):
        names[alias] = table
    return [names[n] for n in re.findall(r"SCAN (\w+)", plan) if n in names]


async def plans(db_url: str, seen: list[tuple[str, Any]],
                setting: str = "enable_seqscan = off") -> list[tuple[str, str]]:
    """(statement, plan) for each caught statement that reads a big table; ``setting`` is
    PostgreSQL's planner setting for the session."""
    out = []
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            pg = conn.dialect.name == "postgresql"
            if pg:
                await conn.execute(sa.text(f"SET {setting}"))
            for statement, parameters in seen:
                if not touches_big(statement):
                    continue
                rows = await conn.exec_driver_sql(
                    ("EXPLAIN " if pg else "EXPLAIN QUERY PLAN ") + statement, parameters)
                out.append((statement, "\n".join(str(r[-1]) for r in rows)))
    finally:
        await engine.dispose()
    return out


# A school day or a range: 0009's index, or 0012's that starts with the same two columns
# (PostgreSQL may take either; both read only the days asked for).
DAYS = r"ix_sales_school_day|ix_sales_day_received"
# Open exceptions: their partial index, or 0012's index of every flagged sale (both hold
# flagged sales only, newest first; the planners take either on these tiny tables).
OPEN = r"ix_sales_open_review|ix_sales_flagged"
# The breakdown reads its rollup by primary key (school, business day, ...).
ITEM_DAYS = r"sqlite_autoindex_sales_item_days_1|sales_item_days_pkey"

PAGES = [
    # (page, the index its main query must use: a regular expression)
    ("/admin/", DAYS),
    ("/admin/exceptions", OPEN),
    ("/admin/reports/z?day=2026-01-15", DAYS),
    (f"/admin/reports/sales?period=custom&{MONTH}&by=product&per=day", ITEM_DAYS),
    (f"/admin/reports/sales?period=custom&{MONTH}&by=category&per=hour", ITEM_DAYS),
    (f"/admin/reports/money?period=custom&{MONTH}", "ix_money_ops_school_created"),
    ("/admin/reports/balances?day=2026-01-31", "ix_wallet_day_nets_school_day"),
    ("/admin/reports/z.csv?day=2026-01-15", DAYS),
    (f"/admin/reports/sales.csv?period=custom&{MONTH}", ITEM_DAYS),
    # The sales list (0012): a month sorted from the by-day-and-time index; flagged sales
    # from their partial index; voided ones from their refund links, then by key.
    (f"/admin/sales?{MONTH}", "ix_sales_day_received"),
    ("/admin/sales?flag=any", "ix_sales_flagged"),
    ("/admin/sales?flag=overdraft", "ix_sales_flagged"),
    ("/admin/sales?status=voided", r"sqlite_autoindex_sale_refunds_1|sale_refunds_pkey"),
    # (PostgreSQL reads these few rows newest first on the by-time index: no scan either.)
    (f"/admin/sales.csv?{MONTH}", DAYS + "|ix_sales_school_received"),
    # A wallet's statement: its own postings through the account indexes, never the school's
    # journal of the month.
    ("/admin/wallets/{wallet}/statement?month=2026-01", "ix_postings_to"),
    ("/admin/wallets/{wallet}/statement.pdf?month=2026-01", "ix_postings_from"),
]


@pytest.mark.parametrize(("page", "index"), PAGES, ids=[p for p, _ in PAGES])
async def test_page_reads_big_tables_through_indexes(client: Any, db_url: str,
                                                     demo: dict[str, Any], page: str,
                                                     index: str) -> None:
    session = await as_role(client, demo, "admin")
    page = page.replace("{wallet}", demo["schools"][0]["wallets"][0]["wallet_id"])
    with statements() as seen:
        resp = await session.get(page)
        assert resp.status == 200, (page, resp.status)
        await resp.read()
    explained = await plans(db_url, seen)
    assert explained, f"{page} read none of {BIG}"
    dialect = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    scans = [(s, p) for s, p in explained if full_scans(p, s, dialect)]
    assert not scans, "\n\n".join(f"{s}\n--> {p}" for s, p in scans)
    assert any(re.search(index, p) for _, p in explained), "\n\n".join(
        p for _, p in explained)


async def test_terminal_lag_is_its_last_sale_by_seq(client: Any, db_url: str,
                                                    demo: dict[str, Any]) -> None:
    """The devices page's lag is the sale at the terminal's max_seq (looked up through
    device_seqs since the year benchmark), not its latest by time; a till without sales has
    none."""
    from datetime import UTC, datetime, timedelta

    from sync_server.admin.devices import device_rows

    from ..server.helpers import enroll, push, sale

    school = demo["schools"][0]
    till = await enroll(client, school["enrollment_code"])
    now = datetime.now(UTC)
    out = await push(client, till["device_token"], [
        sale(school, 1, created_at=now - timedelta(seconds=30)),
        sale(school, 2, created_at=now - timedelta(minutes=10))])  # recorded last, pushed late
    assert [r["status"] for r in out["results"]] == ["applied", "applied"]
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            rows = {r.device_id: r for r in await device_rows(conn, school["school_id"])}
    finally:
        await engine.dispose()
    lag = rows[till["device_id"]].lag_seconds
    assert lag is not None and 590 <= lag <= 900, lag
    assert all(r.lag_seconds is None for d, r in rows.items() if d != till["device_id"])


async def test_sales_search_by_student_finds_the_students_first(
        client: Any, db_url: str, demo: dict[str, Any]) -> None:
    """A name search reads the matching students' sales through ix_sales_wallet_day; filtering
    the joined name instead walked the school's every sale (4.2 s on a SQLite school year)."""
    name = demo["schools"][0]["wallets"][0]["display_name"]
    session = await as_role(client, demo, "admin")
    with statements() as seen:
        resp = await session.get("/admin/sales", params={"student": name})
        assert resp.status == 200
        assert name in await resp.text()
    explained = await plans(db_url, seen)
    dialect = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    assert not [s for s, p in explained if full_scans(p, s, dialect)]
    assert any("ix_sales_wallet_day" in p for _, p in explained), "\n\n".join(
        p for _, p in explained)
    if dialect == "postgresql":
        # The page's keys: each matching student's first rows, LATERAL (on the year they come
        # from that student's ix_sales_wallet_day; these tiny tables have no statistics).
        assert any("LATERAL" in s for s, _ in explained), explained


async def test_student_search_lateral_keys_match_the_plain_order(
        client: Any, db_url: str, demo: dict[str, Any]) -> None:
    """PostgreSQL's LATERAL keys of a student search are exactly the plain query's, page by
    page, in both directions and with other filters."""
    if not db_url.startswith("postgresql"):
        pytest.skip("LATERAL is PostgreSQL's (SQLite sorts the matching sales)")
    from datetime import UTC, datetime, timedelta

    from aiohttp.test_utils import make_mocked_request

    from sync_server.admin.sales import page_refs

    from ..server.helpers import enroll, push, sale

    demo_school = demo["schools"][0]
    till = await enroll(client, demo_school["enrollment_code"])
    now = datetime.now(UTC)
    await push(client, till["device_token"], [  # 3 students, 17 days, two pages
        sale(demo_school, i + 1, wallet=i % 3, created_at=now - timedelta(hours=7 * i))
        for i in range(60)])
    school = demo_school["school_id"]
    name = demo_school["wallets"][0]["display_name"]
    letter = name[0].lower()
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            seen: dict[str, int] = {}
            for query in (f"student={name}", f"student={letter}", f"student={letter}&page=2",
                          f"student={letter}&sort=received&dir=asc",
                          f"student={letter}&status=applied", f"student={letter}&{MONTH}",
                          "student=zzzz-nobody"):
                req = make_mocked_request("GET", "/admin/sales?" + query)
                got = (await conn.execute(page_refs(school, req, lateral=True))).all()
                plain = (await conn.execute(page_refs(school, req))).all()
                assert got == plain, query
                seen[query] = len(got)
    finally:
        await engine.dispose()
    assert seen[f"student={letter}"] == 51 and seen[f"student={letter}&page=2"] > 0, seen


async def test_open_exceptions_are_counted_on_their_partial_index(
        client: Any, db_url: str, demo: dict[str, Any]) -> None:
    """The dashboard's count of sales waiting for review reads ix_sales_open_review alone;
    SQLAlchemy drops table hints on SQLite, and through the queue's joins the count read every
    open sale's row (608 ms against 1 ms on a SQLite school year)."""
    session = await as_role(client, demo, "admin")
    with statements() as seen:
        resp = await session.get("/admin/")
        assert resp.status == 200
        await resp.read()
    counts = [(s, p) for s, p in await plans(db_url, seen)
              if "count(" in s.lower() and "needs_review" in s and "reviewed_at" in s]
    assert counts, "the dashboard counted no open exceptions"
    assert all(re.search(OPEN if db_url.startswith("postgresql") else "ix_sales_open_review", p)
               for _, p in counts), counts


async def test_a_month_of_sales_is_read_in_the_day_index_order(
        client: Any, db_url: str, demo: dict[str, Any]) -> None:
    """A range of days lists school day first, then received time: the page's rows come from
    walking ix_sales_day_received in order, with no sort of the range (by received time alone
    PostgreSQL walked the by-time index of the whole year and filtered out later days: 317 ms
    for one October of the year benchmark), and the totals read the range through a by-day
    index (unordered, PostgreSQL took a sequential scan of up to 0.4 s)."""
    session = await as_role(client, demo, "admin")
    for query in (MONTH, MONTH + "&sort=received&dir=asc"):
        with statements() as seen:
            resp = await session.get(f"/admin/sales?{query}")
            assert resp.status == 200
            await resp.read()
        explained = await plans(db_url, seen)
        refs = [p for s, p in explained if re.search(r"SELECT sales\.ref\s+FROM", s)
                and "LIMIT" in s]
        assert len(refs) == 1, explained
        assert "ix_sales_day_received" in refs[0], refs[0]
        assert not re.search(r"\bSort\b|TEMP B-TREE", refs[0]), refs[0]
        totals = [p for s, p in explained if "count(*)" in s]
        assert totals and all(re.search(DAYS, p) for p in totals), totals


async def test_the_month_export_walks_the_day_index_without_a_sort(
        client: Any, db_url: str, demo: dict[str, Any]) -> None:
    """The month's CSV reads ix_sales_day_received in its own order: no sort before the first
    row. On PostgreSQL that takes the export's ``enable_sort = off`` (see sales_csv.stream):
    its cost model prefers a parallel scan and a sort, which a server-side cursor then runs on
    one core (1.2 s before the first row of a month of the year benchmark)."""
    session = await as_role(client, demo, "admin")
    sent: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", note)
    try:
        with statements() as seen:
            resp = await session.get(f"/admin/sales.csv?{MONTH}")
            assert resp.status == 200
            await resp.read()
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", note)
    exports = [(s, p) for s, p in seen if re.search(r"\blines\b", s) and "LIMIT" in s]
    if db_url.startswith("postgresql"):  # the export's own transaction asked for the walk
        assert "SET LOCAL enable_sort = off" in sent[:sent.index(exports[0][0])], sent
    assert len(exports) == 1, seen
    [(_, plan)] = await plans(db_url, exports, setting="enable_sort = off")  # as the export
    assert "ix_sales_day_received" in plan, plan
    assert not re.search(r"\bSort\b|TEMP B-TREE", plan), plan


def test_only_a_plain_range_of_days_is_exported_by_the_index_walk() -> None:
    from urllib.parse import parse_qsl

    from multidict import MultiDict

    from sync_server.admin.sales import month_export

    def asked(query: str) -> bool:
        request: Any = type("R", (), {"query": MultiDict(parse_qsl(query))})()
        return month_export(request)

    assert asked(MONTH) and asked(MONTH + "&sort=received&dir=asc")
    assert not asked("")  # no range: the by-time index, newest first
    for narrower in ("status=voided", "student=omar", "flag=any", "device=dev_1",
                     "sort=total", "sort=student"):
        assert not asked(f"{MONTH}&{narrower}"), narrower
