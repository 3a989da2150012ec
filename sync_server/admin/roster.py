"""Roster import from CSV: each row validated on its own, a report of accepted and refused rows.

The key is ``student_number`` within the school: a re-import updates the existing wallet (only
fields that differ), it never creates a duplicate. The v1.1 columns ``blocked_categories``,
``blocked_products`` and ``allergens`` hold semicolon-separated lists; a column that is present
sets that kind of restriction to exactly its cell (empty: none), a column that is absent leaves
it alone. The file may be UTF-8 or Arabic Windows text (:mod:`.csv_text`). A row naming
another school in ``school_id`` is refused, as is a second row with the same student number in
one file. Valid rows are applied in one transaction through :mod:`sync_server.records`, so
terminals get the changes with their next snapshot delta.

Issue 16 columns: ``status`` also takes ``inactive`` (the student left: the wallet closes, as
on the student form, :mod:`.students`); ``parent_email``, ``parent_phone`` and ``language``
(checked by :mod:`sync_server.parent_contact`); ``bracelet_uid`` gives the student that
bracelet through the inventory (a UID active on another wallet, in any school, is a row
error). Every import, applied or refused, leaves a ``roster_imports`` row with its row report
(:mod:`.imports`), written in the import's own transaction.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from aiohttp.web_request import FileField

from shared.clock import utcnow
from shared.money import format_minor, parse_major

from .. import parent_contact, records, restrictions
from ..i18n import _
from ..storage.schema import wallets
from ..transactions import reading, writing
from . import auditlog, imports, roster_bracelets
from .csv_text import EncodingRefused, decode_upload
from .render import MAX_AMOUNT, amount_problem, render
from .scope import School, admin_key, require_write, school_of
from .words import word

routes = web.RouteTableDef()
MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 20_000
COLUMNS = ("student_number", "name", "grade", "daily_limit", "status", "school_id",
           "homeroom", "blocked_categories", "blocked_products", "allergens",
           "parent_email", "parent_phone", "language", "bracelet_uid")
# ``status`` cells: a wallet status, or a student's (inactive: left; active also reopens).
STATUSES = ("active", "inactive", "frozen", "closed")
REQUIRED = ("student_number", "name")
# Lists inside a cell are separated by ";" or the Arabic semicolon (never by a comma, which
# product and category names may hold).
ARABIC_SEMICOLON = "\u061b"
# Restriction columns and the kind of restriction each sets.
RESTRICTION_COLUMNS = {"blocked_categories": "category", "blocked_products": "product",
                       "allergens": "allergen"}


@dataclass
class Catalog:
    """What restriction cells may name: the school's categories and products. A cell's
    category or product name matches regardless of case; a product may also be named by ID."""

    categories: dict[str, str] = field(default_factory=dict)        # lower-case -> as spelt
    products: dict[str, list[str]] = field(default_factory=dict)    # ID or lower name -> IDs

    @classmethod
    def of(cls, rows: list[Any]) -> Catalog:
        catalog = cls()
        for r in rows:
            catalog.categories.setdefault(r.category.lower(), r.category)
            catalog.products.setdefault(r.product_id, []).append(r.product_id)
            catalog.products.setdefault(r.name.strip().lower(), []).append(r.product_id)
        return catalog

    def resolve(self, kind: str, cell: str) -> tuple[frozenset[str], list[str]]:
        """The values a cell names, and the reasons it cannot be used."""
        parts = [p.strip() for p in cell.replace(ARABIC_SEMICOLON, ";").split(";")
                 if p.strip()]
        values: set[str] = set()
        reasons: list[str] = []
        if kind == "allergen":
            try:
                return frozenset(restrictions.parse_allergens(
                    cell, separators=";" + ARABIC_SEMICOLON)), []
            except restrictions.RestrictionError as exc:
                return frozenset(), [f"allergens: {exc}"]
        for part in parts:
            if kind == "category":
                spelt = self.categories.get(part.lower())
                if spelt is None:
                    reasons.append(_("blocked_categories: no category %(name)r in this school",
                                     name=part))
                else:
                    values.add(spelt)
            else:
                ids = self.products.get(part) or self.products.get(part.lower(), [])
                if len(set(ids)) == 1:
                    values.add(ids[0])
                elif ids:
                    reasons.append(_("blocked_products: %(name)r names several products; "
                                     "use the product ID", name=part))
                else:
                    reasons.append(_("blocked_products: no product %(name)r in this school",
                                     name=part))
        if len(values) > restrictions.MAX_PER_KIND:
            reasons.append(_("more than %(most)d blocked %(kind)s entries",
                             most=restrictions.MAX_PER_KIND, kind=word(kind)))
        return frozenset(values), reasons


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
    # Restrictions the row sets, by kind (only the kinds whose column the file has).
    restrict: dict[str, frozenset[str]] = field(default_factory=dict)
    bracelet_uid: str | None = None


@routes.get("/admin/roster")
async def roster_form(request: web.Request) -> web.StreamResponse:
    school_of(request)
    return render(request, "roster.html", {"report": None, "columns": COLUMNS, "error": None})


def parse_rows(data: str, school: School, catalog: Catalog | None = None,
               ) -> tuple[list[ParsedRow], list[RowOutcome]]:
    """Validate every row; returns the good ones and the refused ones (with reasons)."""
    catalog = catalog or Catalog()
    reader = csv.DictReader(io.StringIO(data))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ValueError(_("the header must name %(required)s (missing: %(missing)s)",
                           required=", ".join(REQUIRED), missing=", ".join(missing)))
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise ValueError(_("unknown columns: %(unknown)s; allowed: %(allowed)s",
                           unknown=", ".join(unknown), allowed=", ".join(COLUMNS)))
    reader.fieldnames = header
    good: list[ParsedRow] = []
    refused: list[RowOutcome] = []
    seen: dict[str, int] = {}
    seen_uids: dict[str, int] = {}
    for raw in reader:
        line = reader.line_num
        if len(good) + len(refused) >= MAX_ROWS:
            raise ValueError(_("more than %(most)d rows: split the file", most=MAX_ROWS))
        row = {k: (v or "").strip() for k, v in raw.items() if k is not None}
        if raw.get(None):
            refused.append(RowOutcome(line, row.get("student_number", ""), row.get("name", ""),
                                      "refused", [_("more cells than columns")]))
            continue
        if not any(row.values()):
            continue
        number, name = row.get("student_number", ""), row.get("name", "")
        reasons: list[str] = []
        values: dict[str, Any] = {}
        if not number:
            reasons.append(_("student_number is empty"))
        elif len(number) > 64 or not number.isprintable():
            reasons.append(_("student_number is longer than 64 characters or has odd "
                             "characters"))
        elif number in seen:
            reasons.append(_("student_number repeats line %(line)s", line=seen[number]))
        if not name:
            reasons.append(_("name is empty"))
        elif len(name) > 200:
            reasons.append(_("name is longer than 200 characters"))
        values["display_name"] = name
        if row.get("school_id") and row["school_id"] != school.school_id:
            reasons.append(_("row belongs to another school"))
        if "grade" in row:
            if len(row["grade"]) > 40:
                reasons.append(_("grade is longer than 40 characters"))
            values["grade"] = row["grade"] or None
        if "homeroom" in row:
            problem = (restrictions.value_problem(row["homeroom"], "homeroom", 40)
                       if row["homeroom"] else None)
            if problem:
                reasons.append(problem)
            values["homeroom"] = row["homeroom"] or None
        restrict: dict[str, frozenset[str]] = {}
        for column, kind in RESTRICTION_COLUMNS.items():
            if column in row:
                restrict[kind], problems = catalog.resolve(kind, row[column])
                reasons.extend(problems)
        if "daily_limit" in row:
            if row["daily_limit"]:
                try:
                    if len(row["daily_limit"]) > 40:
                        raise ValueError(_("not an amount"))
                    try:
                        limit = parse_major(row["daily_limit"], school.currency)
                    except ValueError as exc:
                        raise ValueError(amount_problem(exc, row["daily_limit"],
                                                        school.currency)) from None
                    if limit < 0:
                        raise ValueError(_("daily_limit cannot be negative"))
                    if limit > MAX_AMOUNT:  # the console's bound; 1e17 would not fit BIGINT
                        raise ValueError(_("more than %(most)s",
                                           most=format_minor(MAX_AMOUNT, school.currency)))
                    values["daily_limit"] = limit
                except ValueError as exc:
                    reasons.append(f"daily_limit: {exc}")
            else:
                values["daily_limit"] = None
        if row.get("status"):
            if row["status"] not in STATUSES:
                reasons.append(_("status must be active, inactive, frozen or closed"))
            elif row["status"] in ("active", "inactive"):
                values["student_status"] = row["status"]
                values["status"] = "active" if row["status"] == "active" else "closed"
            else:
                values["status"] = row["status"]
        reasons.extend(_contact_cells(row, values))
        uid = None
        if row.get("bracelet_uid"):
            try:
                uid = records.parse_uid(row["bracelet_uid"])
            except records.RecordError as exc:
                reasons.append(f"bracelet_uid: {exc}")
            else:
                if uid in seen_uids:
                    reasons.append(_("bracelet_uid repeats line %(line)s", line=seen_uids[uid]))
        if reasons:
            refused.append(RowOutcome(line, number, name, "refused", reasons))
        else:
            seen[number] = line
            if uid:
                seen_uids[uid] = line
            good.append(ParsedRow(line, number, values, restrict, uid))
    return good, refused


def _contact_cells(row: dict[str, str], values: dict[str, Any]) -> list[str]:
    """Parent email, phone and language cells into ``values`` (an empty cell clears that
    field; an absent column leaves it); the reasons a cell is refused."""
    reasons = []
    for column, parse in (("parent_email", parent_contact.parse_email),
                          ("parent_phone", parent_contact.parse_phone),
                          ("language", parent_contact.parse_language)):
        if column in row:
            try:
                values[column] = parse(row[column])
            except parent_contact.ContactError as exc:
                reasons.append(str(exc))
    return reasons


@routes.post("/admin/roster")
async def roster_import(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school = school_of(request)
    form = await request.post()
    upload = form.get("file")
    filename = getattr(upload, "filename", None) or "upload.csv"
    try:
        if not isinstance(upload, FileField):
            raise ValueError(_("choose a CSV file to import"))
        blob = upload.file.read(MAX_BYTES + 1)
        if len(blob) > MAX_BYTES:
            raise ValueError(_("the file is larger than 2 MiB: split it"))
        try:
            data, encoding = decode_upload(blob)
        except EncodingRefused as exc:
            raise ValueError(str(exc)) from None
        if "\x00" in data:  # the one text rule (shared.protocol.text_problem)
            raise ValueError(_("the file contains NUL characters: is it a spreadsheet file "
                               "rather than CSV? Save it as 'CSV UTF-8'"))
        async with reading(request.app) as conn:
            catalog = Catalog.of(await restrictions.school_products(conn, school.school_id))
        good, refused = parse_rows(data, school, catalog)
    except (ValueError, csv.Error) as exc:
        async with writing(request.app) as conn:
            await imports.record_import(conn, request, school.school_id, "students", filename,
                                        [imports.file_refusal(str(exc))], applied=False)
        return render(request, "roster.html", {"report": None, "columns": COLUMNS,
                                               "error": str(exc)}, status=400)

    accepted: list[RowOutcome] = []
    async with writing(request.app) as conn:
        existing = {r.student_number: r for r in await conn.execute(
            sa.select(wallets).where(wallets.c.school_id == school.school_id,
                                     wallets.c.student_number.is_not(None)))}
        in_force = await restrictions.active(
            conn, school.school_id,
            [existing[r.student_number].wallet_id for r in good
             if r.restrict and r.student_number in existing])
        for row in good:
            current = existing.get(row.student_number)
            name = row.values["display_name"]
            if row.bracelet_uid and (problem := await roster_bracelets.problem(
                    conn, school.school_id, current, row.bracelet_uid)):
                refused.append(RowOutcome(row.line, row.student_number, name, "refused",
                                          [f"bracelet_uid: {problem}"]))
                continue
            if current is None:
                wallet_id = await records.create_wallet(
                    conn, school.school_id, name, student_number=row.student_number,
                    daily_limit=row.values.get("daily_limit"),
                    grade=row.values.get("grade"), homeroom=row.values.get("homeroom"),
                    status=row.values.get("status", "active"),
                    **{k: row.values[k] for k in ("student_status", "parent_email",
                                                  "parent_phone", "language")
                       if k in row.values})
                await _restrict(conn, request, school, wallet_id, row, restrictions.empty())
                said = await roster_bracelets.give(conn, request, school, wallet_id,
                                                   row.bracelet_uid, row.line)
                accepted.append(RowOutcome(row.line, row.student_number, name, "created", said))
                continue
            changes = {k: v for k, v in row.values.items() if current._mapping[k] != v}
            if "student_status" in changes:
                changes["left_at"] = utcnow() if changes["student_status"] == "inactive" \
                    else None
            if changes:
                await records.update_wallet(conn, school.school_id, current.wallet_id,
                                            **changes)
            said = [_("%(field)s changed", field=word(k)) for k in sorted(changes)]
            if await _restrict(conn, request, school, current.wallet_id, row,
                               in_force.get(current.wallet_id, restrictions.empty())):
                said.append(_("restrictions changed"))
            said.extend(await roster_bracelets.give(
                conn, request, school, current.wallet_id, row.bracelet_uid, row.line))
            accepted.append(RowOutcome(row.line, row.student_number, name,
                                       "updated" if said else "unchanged", said))
        counts = {k: sum(1 for a in accepted if a.outcome == k)
                  for k in ("created", "updated", "unchanged")}
        counts["refused"] = len(refused)
        report = sorted(accepted + refused, key=lambda r: r.line)
        import_id = await imports.record_import(
            conn, request, school.school_id, "students", filename,
            [imports.report_row(r.line, _REPORT_STATUS[r.outcome], "; ".join(r.reasons)
                                or word(r.outcome), r.student_number, name=r.name,
                                outcome=r.outcome) for r in report], applied=True)
        await auditlog.record(
            conn, request, "roster_imported", school_id=school.school_id,
            target_type="roster", target_id=str(filename)[:64], after=counts,
            note="; ".join(f"line {r.line}: {', '.join(r.reasons)}" for r in refused[:20])
            or None)
    return render(request, "roster.html", {"report": report, "counts": counts,
                                           "columns": COLUMNS, "error": None,
                                           "encoding": encoding, "import_id": import_id})


# A report row's status in the import history: changed, untouched, or refused.
_REPORT_STATUS = {"created": "ok", "updated": "ok", "unchanged": "skipped", "refused": "error"}


async def _restrict(conn: Any, request: web.Request, school: School, wallet_id: str,
                    row: ParsedRow, current: dict[str, list[str]]) -> bool:
    """Set the restrictions the row's columns name (the others stay as they are); an audit
    row per wallet whose restrictions changed. True when something changed."""
    if not row.restrict:
        return False
    keep = {kind: frozenset(current[key]) for kind, key in restrictions.SNAPSHOT_KEYS.items()}
    keep.update(row.restrict)
    wanted = restrictions.Wanted(keep["category"], keep["product"], keep["allergen"])
    admin = request.get(admin_key)
    change = await restrictions.set_for_wallet(conn, school.school_id, wallet_id, wanted,
                                               actor=admin.user_id if admin else None)
    if change:
        await auditlog.record(conn, request, "wallet_restrictions_set",
                              school_id=school.school_id, target_type="wallet",
                              target_id=wallet_id, before=current, after=change.describe(),
                              note=f"roster import, line {row.line}")
    return bool(change)
