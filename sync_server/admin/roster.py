"""Roster import from CSV: each row validated on its own, a report of accepted and refused rows.

The key is ``student_number`` within the school: a re-import updates the existing wallet (only
fields that differ), it never creates a duplicate. A row naming another school in ``school_id``
is refused, as is a second row with the same student number in one file. Valid rows are applied
in one transaction through :mod:`sync_server.records`, so terminals get the changes with their
next snapshot delta.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from aiohttp.web_request import FileField

from shared.money import format_minor, parse_major

from .. import records
from ..storage.schema import wallets
from ..transactions import writing
from . import auditlog
from .render import MAX_AMOUNT, render
from .scope import School, require_write, school_of

routes = web.RouteTableDef()
MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 20_000
COLUMNS = ("student_number", "name", "grade", "daily_limit", "status", "school_id")
REQUIRED = ("student_number", "name")


@dataclass
class RowOutcome:
    line: int
    student_number: str
    name: str
    outcome: str                    # created|updated|unchanged|refused
    reasons: list[str] = field(default_factory=list)


@dataclass
class ParsedRow:
    line: int
    student_number: str
    values: dict[str, Any]


@routes.get("/admin/roster")
async def roster_form(request: web.Request) -> web.StreamResponse:
    school_of(request)
    return render(request, "roster.html", {"report": None, "columns": COLUMNS, "error": None})


def parse_rows(data: str, school: School) -> tuple[list[ParsedRow], list[RowOutcome]]:
    """Validate every row; returns the good ones and the refused ones (with reasons)."""
    reader = csv.DictReader(io.StringIO(data))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ValueError(f"the header must name {', '.join(REQUIRED)} "
                         f"(missing: {', '.join(missing)})")
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise ValueError(f"unknown columns: {', '.join(unknown)}; allowed: {', '.join(COLUMNS)}")
    reader.fieldnames = header
    good: list[ParsedRow] = []
    refused: list[RowOutcome] = []
    seen: dict[str, int] = {}
    for raw in reader:
        line = reader.line_num
        if len(good) + len(refused) >= MAX_ROWS:
            raise ValueError(f"more than {MAX_ROWS} rows: split the file")
        row = {k: (v or "").strip() for k, v in raw.items() if k is not None}
        if raw.get(None):
            refused.append(RowOutcome(line, row.get("student_number", ""), row.get("name", ""),
                                      "refused", ["more cells than columns"]))
            continue
        if not any(row.values()):
            continue
        number, name = row.get("student_number", ""), row.get("name", "")
        reasons: list[str] = []
        values: dict[str, Any] = {}
        if not number:
            reasons.append("student_number is empty")
        elif len(number) > 64 or not number.isprintable():
            reasons.append("student_number is longer than 64 characters or has odd characters")
        elif number in seen:
            reasons.append(f"student_number repeats line {seen[number]}")
        if not name:
            reasons.append("name is empty")
        elif len(name) > 200:
            reasons.append("name is longer than 200 characters")
        values["display_name"] = name
        if row.get("school_id") and row["school_id"] != school.school_id:
            reasons.append("row belongs to another school")
        if "grade" in row:
            if len(row["grade"]) > 40:
                reasons.append("grade is longer than 40 characters")
            values["grade"] = row["grade"] or None
        if "daily_limit" in row:
            if row["daily_limit"]:
                try:
                    if len(row["daily_limit"]) > 40:
                        raise ValueError("not an amount")
                    limit = parse_major(row["daily_limit"], school.currency)
                    if limit < 0:
                        raise ValueError("daily_limit cannot be negative")
                    if limit > MAX_AMOUNT:  # the console's bound; 1e17 would not fit BIGINT
                        raise ValueError("more than "
                                         + format_minor(MAX_AMOUNT, school.currency))
                    values["daily_limit"] = limit
                except ValueError as exc:
                    reasons.append(f"daily_limit: {exc}")
            else:
                values["daily_limit"] = None
        if row.get("status"):
            if row["status"] not in ("active", "frozen", "closed"):
                reasons.append("status must be active, frozen or closed")
            values["status"] = row["status"]
        if reasons:
            refused.append(RowOutcome(line, number, name, "refused", reasons))
        else:
            seen[number] = line
            good.append(ParsedRow(line, number, values))
    return good, refused


@routes.post("/admin/roster")
async def roster_import(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school = school_of(request)
    form = await request.post()
    upload = form.get("file")
    filename = getattr(upload, "filename", None) or "upload.csv"
    try:
        if not isinstance(upload, FileField):
            raise ValueError("choose a CSV file to import")
        blob = upload.file.read(MAX_BYTES + 1)
        if len(blob) > MAX_BYTES:
            raise ValueError("the file is larger than 2 MiB: split it")
        try:
            data = blob.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValueError("the file is not UTF-8 text (save it as 'CSV UTF-8')") from None
        if "\x00" in data:  # the one text rule (shared.protocol.text_problem)
            raise ValueError("the file contains NUL characters: is it a spreadsheet file "
                             "rather than CSV? Save it as 'CSV UTF-8'")
        good, refused = parse_rows(data, school)
    except (ValueError, csv.Error) as exc:
        return render(request, "roster.html", {"report": None, "columns": COLUMNS,
                                               "error": str(exc)}, status=400)

    accepted: list[RowOutcome] = []
    async with writing(request.app) as conn:
        existing = {r.student_number: r for r in await conn.execute(
            sa.select(wallets).where(wallets.c.school_id == school.school_id,
                                     wallets.c.student_number.is_not(None)))}
        for row in good:
            current = existing.get(row.student_number)
            name = row.values["display_name"]
            if current is None:
                await records.create_wallet(
                    conn, school.school_id, name, student_number=row.student_number,
                    daily_limit=row.values.get("daily_limit"),
                    grade=row.values.get("grade"), status=row.values.get("status", "active"))
                accepted.append(RowOutcome(row.line, row.student_number, name, "created"))
                continue
            changes = {k: v for k, v in row.values.items() if current._mapping[k] != v}
            if changes:
                await records.update_wallet(conn, school.school_id, current.wallet_id,
                                            **changes)
            accepted.append(RowOutcome(row.line, row.student_number, name,
                                       "updated" if changes else "unchanged",
                                       [f"{k} changed" for k in sorted(changes)]))
        counts = {k: sum(1 for a in accepted if a.outcome == k)
                  for k in ("created", "updated", "unchanged")}
        counts["refused"] = len(refused)
        await auditlog.record(
            conn, request, "roster_imported", school_id=school.school_id,
            target_type="roster", target_id=str(filename)[:64], after=counts,
            note="; ".join(f"line {r.line}: {', '.join(r.reasons)}" for r in refused[:20])
            or None)
    report = sorted(accepted + refused, key=lambda r: r.line)
    return render(request, "roster.html", {"report": report, "counts": counts,
                                           "columns": COLUMNS, "error": None})
