"""Receiving bracelets into stock: a supplier's CSV (uploaded or pasted), or tapped one by one.

Suppliers ship a list of UIDs with a batch; its column is called many things ("UID",
"Tag UID", "serial", "Chip ID") and the UIDs come with colons, spaces or dashes, in either
case: the column is found by name (or the file is a bare list, one UID a line) and each UID
goes through ``normalize_uid``. Each row is judged on its own (malformed, twice in the file,
already in this school's inventory, active in another school); the good rows enter the stock
together in one transaction, and the row report is kept as a ``roster_imports`` row of kind
``bracelets`` (the import history pages list it). A file refused as a whole (no UID column,
too large, not text) changes nothing and is kept in the history too, as not applied.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from aiohttp.web_request import FileField
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow
from shared.ids import mask_uid, new_id, normalize_uid

from .. import records
from ..i18n import _
from ..storage.schema import roster_imports
from ..transactions import writing
from . import auditlog
from .csv_text import EncodingRefused, decode_upload
from .imports import file_refusal, report_row
from .render import FormError, redirect, render, text
from .scope import School, admin_of, require_write, school_of

routes = web.RouteTableDef()
MAX_BYTES = 1024 * 1024
MAX_ROWS = 10_000
# Header names suppliers use for the UID column, compared without case, spaces, "_" or "-".
UID_HEADERS = ("uid", "braceletuid", "taguid", "chipuid", "nfcuid", "uidhex", "serial",
               "serialnumber", "chipid", "tagid", "tag", "id")


def _squash(name: str) -> str:
    return "".join(ch for ch in name.strip().lower() if ch not in " _-.#")


def read_uids(data: str) -> list[tuple[int, str]]:
    """``(line, raw UID cell)`` for each data row; ValueError when no UID column is found."""
    rows = [r for r in csv.reader(io.StringIO(data)) if any(c.strip() for c in r)]
    if not rows:
        raise ValueError(_("the file holds no UIDs"))
    if len(rows) > MAX_ROWS + 1:
        raise ValueError(_("more than %(n)d rows: split the file", n=MAX_ROWS))
    header = [_squash(c) for c in rows[0]]
    column = next((header.index(h) for h in UID_HEADERS if h in header), None)
    if column is not None:
        body, first_line = rows[1:], 2
    else:
        try:  # no known header: a bare list whose first row is already a UID
            normalize_uid(rows[0][0])
        except ValueError:
            raise ValueError(_("no UID column: name one column 'uid' (or give one UID a "
                               "line)")) from None
        column, body, first_line = 0, rows, 1
    return [(first_line + i, r[column] if column < len(r) else "") for i, r in enumerate(body)]


async def stock_rows(conn: AsyncConnection, school_id: str, rows: list[tuple[int, str]], *,
                     actor: str | None, batch_id: str) -> list[dict[str, Any]]:
    """Stock each good row in the caller's transaction; the row report."""
    report: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for line, raw in rows:
        uid = raw.strip()[:40]
        try:
            uid = records.parse_uid(raw)
            if uid in seen:
                raise records.RecordError(_("twice in this file (first on line %(line)d)",
                                            line=seen[uid]))
            seen[uid] = line
            await records.stock_bracelet(conn, school_id, uid, actor=actor, batch_id=batch_id)
        except records.RecordError as exc:
            report.append(report_row(line, "error", str(exc), uid=uid))
        else:
            report.append(report_row(line, "ok", "", uid=uid))
    return report


async def _keep(conn: AsyncConnection, request: web.Request, school: School, import_id: str,
                filename: str, report: list[dict[str, Any]], applied: bool) -> None:
    """Counted as ``imports.record_import`` counts (row 0 is a whole-file refusal); the ID
    is made before the rows are stocked, since each bracelet names its batch."""
    rows = [r for r in report if r["row"] > 0]
    ok = sum(1 for r in rows if r["status"] == "ok")
    failed = sum(1 for r in report if r["status"] == "error")
    admin = admin_of(request)
    await conn.execute(sa.insert(roster_imports).values(
        import_id=import_id, school_id=school.school_id, kind="bracelets", at=utcnow(),
        actor_id=admin.user_id, actor_email=admin.email, filename=filename[:200],
        rows_total=len(rows), rows_ok=ok, rows_failed=failed, applied=applied, report=report))
    await auditlog.record(conn, request, "bracelets_stocked", school_id=school.school_id,
                          target_type="roster_import", target_id=import_id,
                          after={"stocked": ok, "refused": failed, "applied": applied})


def _page(request: web.Request, **context: Any) -> web.Response:
    status = 400 if context.get("error") else 200
    return render(request, "bracelet_stock.html",
                  {"report": None, "error": None, "counts": None, **context}, status=status)


@routes.get("/admin/bracelets/stock")
async def stock_page(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school_of(request)
    return _page(request)


@routes.post("/admin/bracelets/stock")
async def stock_import(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school = school_of(request)
    form = await request.post()
    upload = form.get("file")
    pasted = form.get("uids")
    filename = "pasted"
    import_id = new_id("imp")
    try:
        if isinstance(upload, FileField) and upload.filename:
            filename = upload.filename
            blob = upload.file.read(MAX_BYTES + 1)
            if len(blob) > MAX_BYTES:
                raise ValueError(_("the file is larger than 1 MiB: split it"))
            try:
                data, _encoding = decode_upload(blob)
            except EncodingRefused as exc:
                raise ValueError(str(exc)) from None
        elif isinstance(pasted, str) and pasted.strip():
            if len(pasted) > MAX_BYTES:
                raise ValueError(_("the text is larger than 1 MiB: split it"))
            data = pasted
        else:
            raise ValueError(_("choose a CSV file or paste the UIDs"))
        if "\x00" in data:
            raise ValueError(_("the file contains NUL characters: save it as 'CSV UTF-8'"))
        rows = read_uids(data)
    except (ValueError, csv.Error) as exc:
        async with writing(request.app) as conn:
            await _keep(conn, request, school, import_id, filename,
                        [file_refusal(str(exc))], applied=False)
        return _page(request, error=str(exc))
    async with writing(request.app) as conn:
        report = await stock_rows(conn, school.school_id, rows,
                                  actor=admin_of(request).user_id, batch_id=import_id)
        await _keep(conn, request, school, import_id, filename, report, applied=True)
    stocked = sum(1 for r in report if r["status"] == "ok")
    return _page(request, report=report, import_id=import_id,
                 counts={"stocked": stocked, "refused": len(report) - stocked})


@routes.post("/admin/bracelets/stock/tap")
async def stock_tap(request: web.Request) -> web.StreamResponse:
    """Register one bracelet tapped on a keyboard-wedge reader; back to the focused field."""
    require_write(request)
    school = school_of(request)
    form = await request.post()
    back = "/admin/bracelets/stock"
    async with writing(request.app) as conn:
        try:
            uid = records.parse_uid(text(form, "uid", max_len=40, label="bracelet UID"))
            await records.stock_bracelet(conn, school.school_id, uid,
                                         actor=admin_of(request).user_id, note="tapped")
        except (FormError, records.RecordError) as exc:
            return redirect(back, _("Not added: %(why)s.", why=exc), error=True)
        await auditlog.record(conn, request, "bracelets_stocked", school_id=school.school_id,
                              target_type="bracelet", target_id=uid,
                              after={"state": "in_stock"}, note="tapped")
    return redirect(back, _("%(uid)s added to stock.", uid=mask_uid(uid)))
