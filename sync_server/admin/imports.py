"""Import history: every roster and bracelet-batch import with its row report, kept for good.

A school has to be able to show later what an import did (who sent which file, which rows
were refused and why), so each import writes one ``roster_imports`` row in the same
transaction as its changes: an import that rolled back leaves no history claiming it
applied, and one refused as a whole (a bad header, an unreadable file) is kept with
``applied`` false. Row reports are lists of ``{row, status, message, student_number, ...}``
with status ``ok``, ``error`` or ``skipped``; a bracelet batch's rows name a ``uid``, which
viewers see masked. Every role of the school may read the history; the CSV of a report is
the page's list, cells made safe for spreadsheets.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow
from shared.ids import mask_uid, new_id

from ..storage.schema_people import roster_imports
from ..transactions import reading
from .csv_cells import safe_cell
from .render import page_context, paged, render
from .sales import CSV_BOM
from .scope import admin_key, admin_of, found, school_of

routes = web.RouteTableDef()
KINDS = ("students", "bracelets")
STATUSES = ("ok", "error", "skipped")


def report_row(row: int, status: str, message: str, student_number: str | None = None,
               **more: Any) -> dict[str, Any]:
    """One line of a report, in the shape every kind of import keeps."""
    assert status in STATUSES
    return {"row": row, "status": status, "message": message,
            "student_number": student_number, **more}


def file_refusal(message: str) -> dict[str, Any]:
    """The report of a file refused as a whole (row 0: no row was read)."""
    return report_row(0, "error", message)


async def record_import(conn: AsyncConnection, request: web.Request | None, school_id: str,
                        kind: str, filename: str | None, report: list[dict[str, Any]], *,
                        applied: bool) -> str:
    """Keep an import's report, in the caller's transaction; returns its ID."""
    assert kind in KINDS
    admin = request.get(admin_key) if request is not None else None
    import_id = new_id("imp")
    rows = [r for r in report if r["row"] > 0]
    await conn.execute(sa.insert(roster_imports).values(
        import_id=import_id, school_id=school_id, kind=kind, at=utcnow(),
        actor_id=admin.user_id if admin else None, actor_email=admin.email if admin else None,
        filename=(filename or "")[:200] or None, rows_total=len(rows),
        rows_ok=sum(1 for r in rows if r["status"] == "ok"),
        rows_failed=sum(1 for r in report if r["status"] == "error"),
        applied=applied, report=report))
    return import_id


@routes.get("/admin/imports")
async def import_list(request: web.Request) -> web.StreamResponse:
    school = school_of(request)
    stmt = (sa.select(*(c for c in roster_imports.c if c.name != "report"))
            .where(roster_imports.c.school_id == school.school_id))
    if request.query.get("kind") in KINDS:
        stmt = stmt.where(roster_imports.c.kind == request.query["kind"])
    stmt = stmt.order_by(roster_imports.c.at.desc(), roster_imports.c.import_id)
    async with reading(request.app) as conn:
        rows = (await conn.execute(paged(stmt, request))).all()
    return render(request, "imports.html", {**page_context(request, rows), "kinds": KINDS})


async def _import(request: web.Request) -> Any:
    school = school_of(request)
    async with reading(request.app) as conn:
        return found((await conn.execute(sa.select(roster_imports).where(
            roster_imports.c.school_id == school.school_id,
            roster_imports.c.import_id == request.match_info["import_id"]))).first())


# Statuses some reports spell in their own words (a bracelet batch's), read as the common ones.
SAME_STATUS = {"stocked": "ok", "created": "ok", "updated": "ok", "refused": "error",
               "unchanged": "skipped"}


def _shown_rows(request: web.Request, report: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The report as the asker may see it: statuses in the common words, UIDs masked for
    viewers."""
    masked = not admin_of(request).sees_full_uids
    shown = []
    for r in report:
        r = {**r, "status": SAME_STATUS.get(str(r.get("status")), r.get("status"))}
        if masked and r.get("uid"):
            r["uid"] = mask_uid(str(r["uid"]))
        shown.append(r)
    return shown


@routes.get("/admin/imports/{import_id}")
async def import_page(request: web.Request) -> web.StreamResponse:
    row = await _import(request)
    report = _shown_rows(request, list(row.report or []))
    status = request.query.get("status")
    shown = [r for r in report if r.get("status") == status] if status in STATUSES else report
    return render(request, "import.html", {"imp": row, "report": shown,
                                           "has_uids": any(r.get("uid") for r in report)})


@routes.get("/admin/imports/{import_id}/report.csv")
async def import_csv(request: web.Request) -> web.StreamResponse:
    row = await _import(request)
    report = _shown_rows(request, list(row.report or []))
    buf = io.StringIO()
    writer = csv.writer(buf)
    extra = sorted({k for r in report for k in r} - {"row", "status", "message",
                                                       "student_number"})
    writer.writerow(["row", "status", "student_number", *extra, "message"])
    for r in report:
        writer.writerow([r.get("row"), r.get("status"), safe_cell(r.get("student_number")),
                         *(safe_cell(r.get(k)) for k in extra), safe_cell(r.get("message"))])
    return web.Response(body=CSV_BOM + buf.getvalue().encode(), headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="import-{row.import_id}.csv"'})
