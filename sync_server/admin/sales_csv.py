"""The sales list as CSV (``/admin/sales.csv``): every filtered row, in the list's order,
streamed in constant memory at tens of thousands of rows a second.

The export used to read the list's own query through SQLAlchemy's typed rows and format every
cell in Python: 7-12k rows/s on a school year (a month is 150,000 rows). What cost the time,
measured on that year's SQLite file: the three outer joins to names on every row, SQLAlchemy
decoding two JSON columns and two timestamps per row, and ``safe_cell`` on every cell. So:

- the rows are read without the joins to wallets, devices and cashiers (a school's own small
  tables, read once into dicts of finished fields) unless the list is sorted by one of those
  names;
- the columns are read as the driver gives them (``type_coerce`` to ``NullType``: no result
  processing), JSON as text, SQLite's timestamps as text, PostgreSQL's as the export's text
  (``to_char`` in the database's process);
- cells that repeat (names, amounts, the items of a sale, flags, days, codes) are formatted,
  made safe and quoted once per export and kept in bounded memos; a line is one f-string of
  finished fields, so neither ``safe_cell`` nor the csv module runs per row;
- a month in day order walks its index from the first row (no sort first), the next rows are
  fetched while this chunk is formatted, and the body is gzipped at level 1 in a thread for
  clients that accept it (every browser).

On PostgreSQL these took the month of benchmarks/year.py from 25,000 to about 65,000 rows/s
through HTTP. The bytes are the same as the csv module's (tests/admin/test_sales_csv.py
compares them with a row-by-row reference formatting, on both databases).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from ..storage.schema import cashiers, devices, sale_refunds, wallets
from ..transactions import reading
from .csv_cells import safe_cell
from .formatting import major
from .gzip_body import GzipBody
from .scope import School

CSV_BOM = "\ufeff".encode()
CHUNK = 2000  # rows per fetch and per network write (about 0.5 MB)
MEMO = 20_000  # distinct cells remembered per memo of an export; emptied when full
HEADER = ["ref", "received_at", "created_at", "business_day", "terminal", "seq", "kind",
          "cashier", "student_number", "student", "wallet_id", "total", "currency", "status",
          "code", "flags", "balance_after", "offline", "refund", "refund_ref", "items", "net"]
# What the export reads of each row, in this order (names come from the dicts).
COLUMNS = ("ref", "received_at", "created_at", "business_day", "device_id", "seq", "kind",
           "cashier_id", "wallet_id", "total", "status", "code", "flags", "balance_after",
           "offline", "lines")


PLAIN = re.compile(r"[0-9A-Za-z][^;\t\r\n]*\Z")  # a text safe_cell leaves as it is


def cell(value: Any) -> Any:
    """``safe_cell(value)``, quicker for the common case: a text starting with an ASCII
    letter or digit and holding no separator is never a formula (see csv_cells)."""
    if isinstance(value, str) and PLAIN.match(value):
        return value
    return safe_cell(value)


SIMPLE = re.compile(r'[0-9A-Za-z][^;\t\r\n,"]*\Z')  # PLAIN, and no quotes needed either
NEEDS_QUOTES = re.compile(r'[,"\r\n]')  # what makes the csv module quote a cell


def field_of(value: Any) -> str:
    """``value`` as the csv module writes ``cell(value)`` in a row of several cells."""
    if isinstance(value, str) and SIMPLE.match(value):
        return value
    text = str(cell(value))
    if NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def iso(value: Any) -> str:
    """A timestamp as the export writes it (``datetime.isoformat`` of the UTC time): SQLite
    gives the naive UTC text SQLAlchemy stored, ``YYYY-MM-DD HH:MM:SS.ffffff``, turned into
    the same text without parsing it; an aware datetime (as asyncpg reads one) is formatted.
    The export on PostgreSQL reads the finished text instead (:func:`iso_text`)."""
    if isinstance(value, str):
        if len(value) == 26:
            return value.replace(" ", "T").removesuffix(".000000") + "+00:00"
        return datetime.fromisoformat(value).replace(tzinfo=UTC).isoformat()
    return str(value.astimezone(UTC).isoformat())


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _flags(raw: Any) -> str:
    return field_of(" ".join(_json(raw) or []))


def _items(raw: Any) -> str:
    return field_of(items_text(_json(raw)))


def items_text(lines: list[dict[str, Any]] | None) -> str:
    """``2 x Water 330ml; 1 x Lunch``: what was sold, for people (the amounts have their own
    machine-readable columns)."""
    return "; ".join(f"{ln['quantity']} x {ln['name']}" for ln in lines or [])


def undecoded(stmt: sa.Select[Any], dialect: str = "sqlite") -> sa.Select[Any]:
    """The list's query (its filters, its order), reading only COLUMNS as the driver gives
    them; on PostgreSQL the two timestamps come as the export's text (:func:`iso_text`)."""
    picked = {c.key: c for c in stmt.selected_columns}
    # The joined names stay selected when present: the list's ORDER BY names their labels.
    keys = [*COLUMNS, *(k for k in ("display_name", "device_name", "cashier_name")
                        if k in picked)]

    def read(key: str) -> Any:
        column = picked[key]
        if key in ("flags", "lines"):  # JSON as its text (asyncpg would hand lists over)
            column = sa.cast(column, sa.Text)  # text is a memo key
        elif key in ("received_at", "created_at") and dialect == "postgresql":
            column = iso_text(column)
        return sa.type_coerce(column, sa.types.NullType()).label(key)

    return stmt.with_only_columns(*map(read, keys), maintain_column_froms=True)


def iso_text(column: Any) -> Any:
    """:func:`iso` in SQL: ``datetime.isoformat`` of the UTC time (the fraction only when it
    is not zero). Formatting two timestamps a row was a third of the export's Python time on
    PostgreSQL; ``to_char`` does it in the database's process, beside this one."""
    text = sa.func.to_char(sa.func.timezone(sa.literal("UTC"), column),
                           sa.literal('YYYY-MM-DD"T"HH24:MI:SS.US'))
    return sa.func.replace(text, sa.literal(".000000"), sa.literal("")) + sa.literal("+00:00")


async def _names(conn: Any, school_id: str,
                 ) -> tuple[dict[Any, str], dict[Any, str], dict[Any, str]]:
    """The school's wallets (their three fields joined), devices and cashiers by ID, as
    finished fields (a school's size, not the export's)."""
    w = {r[0]: ",".join(map(field_of, r[1:])) for r in await conn.execute(
        sa.select(wallets.c.wallet_id, wallets.c.student_number, wallets.c.display_name,
                  wallets.c.wallet_id).where(wallets.c.school_id == school_id))}
    d = {r[0]: field_of(r[1]) for r in await conn.execute(
        sa.select(devices.c.device_id, devices.c.name).where(devices.c.school_id == school_id))}
    c = {r[0]: field_of(r[1]) for r in await conn.execute(
        sa.select(cashiers.c.cashier_id, cashiers.c.name)
        .where(cashiers.c.school_id == school_id))}
    return w, d, c


async def _refund_links(conn: Any, school_id: str) -> dict[str, str]:
    """The school's refund links as the two finished fields of a refunded sale's row, by
    sale ref. Joined in the query they cost PostgreSQL an index probe for each exported row
    (148,639 for a month of benchmarks/year.py, about a third of its read) to find the few
    hundred refunded ones; a school year holds some thousands of links."""
    rows = await conn.execute(
        sa.select(sale_refunds.c.sale_ref, sale_refunds.c.kind,
                  sa.func.coalesce(sale_refunds.c.void_ref, sale_refunds.c.op_id))
        .where(sale_refunds.c.school_id == school_id))
    return {r[0]: f"{field_of(r[1])},{field_of(r[2])}" for r in rows}


async def stream(request: web.Request, school: School, stmt: sa.Select[Any], *,
                 index_walk: bool = False) -> web.StreamResponse:
    """``stmt`` (the sales list's query; without the joined names unless sorted by one) as
    the CSV response. ``index_walk``: ``stmt`` is a range of days in the order of the index
    on (school, day, received, ref) and filters nothing else."""
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": 'attachment; filename="sales.csv"'})
    async with reading(request.app) as conn:
        if index_walk and conn.dialect.name == "postgresql":
            # For a month (150,000 of a year's 1.2 million sales) PostgreSQL plans a parallel
            # scan of the table and a sort. A server-side cursor cannot run parallel plans, so
            # that plan ran on one core: 1.2 s before the first row. Walking the index in its
            # own order streams from the first row (30 ms) and ends sooner (1.4 s against 2.1
            # s to read the month); this transaction reads nothing else.
            await conn.exec_driver_sql("SET LOCAL enable_sort = off")
        chunks = lines(conn, stmt, school.currency, *await _names(conn, school.school_id),
                       await _refund_links(conn, school.school_id))
        # The query runs before the 200 goes out: a filter the database refuses is an error
        # page, never a CSV cut off after its header.
        chunk = await anext(chunks, None)
        body = GzipBody(request, response)
        await response.prepare(request)
        # A UTF-8 BOM first: Excel reads a CSV without one in the Windows code page, which
        # turns Arabic names into mojibake; with it, every spreadsheet reads UTF-8.
        await body.write(CSV_BOM + HEADER_LINE.encode())
        while chunk is not None:
            await body.write(chunk.encode())
            chunk = await anext(chunks, None)
    await body.finish()
    return response


class Memo(dict[Any, str]):
    """Cells already formatted, by the value they were made from: a plain dict lookup per
    cell (``lru_cache`` costs a call), emptied when it holds ``MEMO`` of them."""

    def __init__(self, make: Callable[[Any], str]) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key: Any) -> str:
        if len(self) >= MEMO:
            self.clear()
        made = self[key] = self.make(key)
        return made


async def lines(conn: Any, stmt: sa.Select[Any], currency: str,
                wallet_of: dict[Any, str], device_of: dict[Any, str],
                cashier_of: dict[Any, str], refund_of: dict[str, str]) -> AsyncIterator[str]:
    """The CSV's lines after the header, a chunk (``CHUNK`` rows, ending in a line break) at
    a time. Each line is one f-string of finished fields: cells that repeat come from memos
    already quoted, so the csv module is not needed per row."""
    texts = Memo(field_of)
    money = Memo(lambda v: "" if v is None else major(v, currency))
    flags, items = Memo(_flags), Memo(_items)
    wallets_ = Memo(lambda w: ",," + field_of(w))
    wallets_.update(wallet_of)
    code, zero = field_of(currency), major(0, currency)
    unrefunded = f"{field_of(None)},{field_of(None)}"
    dialect = conn.dialect.name
    stamp = iso if dialect != "postgresql" else str  # already the export's text: undecoded
    result = await conn.stream(undecoded(stmt, dialect).execution_options(yield_per=CHUNK))
    async for chunk in ahead(result.partitions(CHUNK)):
        out = []
        for (ref, received, created, day, device, seq, kind, cashier, wallet, total,
             status, refusal, raw_flags, balance, offline, raw_lines, *_) in chunk:
            signed = money[-total if kind == "void" else total]
            out.append(
                f"{field_of(ref)},{stamp(received)},{stamp(created)},{texts[day]},"
                f"{device_of.get(device, '')},{seq},{texts[kind]},"
                f"{cashier_of.get(cashier, '')},{wallets_[wallet]},{signed},{code},"
                f"{texts[status]},{texts[refusal]},{flags[raw_flags]},{money[balance]},"
                f"{'yes' if offline else 'no'},{refund_of.get(ref, unrefunded)},"
                f"{items[raw_lines]},{signed if status == 'applied' else zero}")
        out.append("")  # the last line's break
        yield "\r\n".join(out)


HEADER_LINE = ",".join(HEADER) + "\r\n"


async def ahead(chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """``chunks``, each next one already asked for while the caller works on this one: the
    database computes the next rows while this process formats and sends (on PostgreSQL the
    two took turns, each idle half the time). One request in flight at a time, as the
    connection allows; cancelled if the caller stops early."""
    pending = asyncio.ensure_future(anext(chunks, None))
    try:
        while (chunk := await pending) is not None:
            pending = asyncio.ensure_future(anext(chunks, None))
            await asyncio.sleep(0)  # let that request go out before the work on this chunk
            yield chunk
    finally:
        if not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending
