"""Adding and editing students in the console, and the roster import's issue-16 columns with
its kept history: checked through the database, the snapshot terminals get and the pages."""

from __future__ import annotations

from typing import Any

import aiohttp
import sqlalchemy as sa

from sync_server.storage.schema import audit_log, credentials, wallets
from sync_server.storage.schema_people import bracelets, roster_imports
from tests.server.helpers import enroll, snapshot

from .conftest import as_role, query, scalar

GOOD = {"display_name": "Huda Saleh", "student_number": "N-100", "grade": "Grade 4",
        "homeroom": "4B", "student_status": "active", "parent_email": "Huda.Parent@Example.com",
        "parent_phone": "00966 50-123 4567", "language": "ar", "daily_limit": "12.50"}


async def _wallet(db_url: str, school_id: str, number: str) -> Any:
    rows = await query(db_url, sa.select(wallets).where(wallets.c.school_id == school_id,
                                                       wallets.c.student_number == number))
    return rows[0] if rows else None


async def test_add_and_edit_a_student(client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    admin = await as_role(client, demo, "admin")
    assert "student-edit" in await admin.page("/admin/wallets/new")
    resp = await admin.post("/admin/wallets/new", GOOD)
    assert resp.status == 303, await resp.text()
    huda = await _wallet(db_url, school["school_id"], "N-100")
    assert resp.headers["Location"] == f"/admin/wallets/{huda.wallet_id}"
    assert (huda.parent_email, huda.parent_phone, huda.language, huda.daily_limit,
            huda.student_status, huda.status) == ("huda.parent@example.com", "+966501234567",
                                                  "ar", 1250, "active", "active")
    # An admin sees the contact in full, a manager and a viewer masked.
    page = await admin.page(f"/admin/wallets/{huda.wallet_id}")
    assert "+966501234567" in page and "huda.parent@example.com" in page
    for role in ("manager", "viewer"):
        other = await as_role(client, demo, role)
        shown = await other.page(f"/admin/wallets/{huda.wallet_id}")
        assert "+966501234567" not in shown and "huda.parent@example.com" not in shown
        assert "4567" in shown and "@example.com" in shown
    admin = await as_role(client, demo, "admin")  # one cookie jar: the last login wins

    # Refusals: each names the problem and changes nothing.
    before = await query(db_url, sa.select(wallets).order_by(wallets.c.wallet_id))
    for field, value, said in (("parent_email", "not-an-email", "not an email address"),
                               ("parent_phone", "12ab", "not a phone number"),
                               ("parent_phone", "+1 23", "8 to 15 digits"),
                               ("language", "fr", "ar or en"),
                               ("student_status", "gone", "active or inactive"),
                               ("display_name", "", "is required"),
                               ("daily_limit", "-3", "zero or more")):
        resp = await admin.post(f"/admin/wallets/{huda.wallet_id}/edit",
                                {**GOOD, field: value})
        assert resp.status == 400 and said in await resp.text(), (field, value)
    taken = school["wallets"][1]["wallet_id"]
    number = (await query(db_url, sa.select(wallets.c.student_number)
                          .where(wallets.c.wallet_id == taken)))[0][0]
    resp = await admin.post(f"/admin/wallets/{huda.wallet_id}/edit",
                            {**GOOD, "student_number": number})
    assert resp.status == 400 and "already belongs to another student" in await resp.text()
    resp = await admin.post("/admin/wallets/new", {**GOOD, "display_name": "Twin"})
    assert resp.status == 400 and "already belongs to another student" in await resp.text()
    assert await query(db_url, sa.select(wallets).order_by(wallets.c.wallet_id)) == before

    # Made inactive: the wallet terminals see is closed; back to active reopens it.
    dev = await enroll(client, school["enrollment_code"])
    first = await snapshot(client, dev["device_token"])
    resp = await admin.post(f"/admin/wallets/{huda.wallet_id}/edit",
                            {**GOOD, "student_status": "inactive", "grade": "Grade 5"})
    assert resp.status == 303
    huda = await _wallet(db_url, school["school_id"], "N-100")
    assert (huda.student_status, huda.status, huda.grade) == ("inactive", "closed", "Grade 5")
    assert huda.left_at is not None
    delta = await snapshot(client, dev["device_token"], first["cursor"])
    assert [(w["wallet_id"], w["status"]) for w in delta["wallets"]] == [
        (huda.wallet_id, "closed")]
    resp = await admin.post(f"/admin/wallets/{huda.wallet_id}/edit", GOOD)
    huda = await _wallet(db_url, school["school_id"], "N-100")
    assert (huda.student_status, huda.status, huda.left_at) == ("active", "active", None)
    audits = await query(db_url, sa.select(audit_log.c.action, audit_log.c.before,
                                           audit_log.c.after)
                         .where(audit_log.c.target_id == huda.wallet_id)
                         .order_by(audit_log.c.audit_id))
    assert [a.action for a in audits] == ["student_created", "student_updated",
                                          "student_updated"]
    assert audits[1].before["grade"] == "Grade 4" and audits[1].after["grade"] == "Grade 5"
    assert "+966501234567" not in str(audits)  # contacts masked in the audit log

    # Another school's student: 404, nothing changed.
    foreign = demo["schools"][1]["wallets"][0]["wallet_id"]
    assert (await admin.get(f"/admin/wallets/{foreign}/edit")).status == 404
    resp = await admin.post(f"/admin/wallets/{foreign}/edit", GOOD)
    assert resp.status == 404


async def _upload(client: Any, session: Any, text: str, name: str = "roster.csv") -> Any:
    form = aiohttp.FormData()
    form.add_field("csrf_token", session.csrf)
    form.add_field("file", text.encode(), filename=name, content_type="text/csv")
    return await client.post("/admin/roster", data=form)


async def test_import_new_columns_bracelets_and_history(client: Any, demo: dict[str, Any],
                                                        db_url: str) -> None:
    school, other = demo["schools"]
    admin = await as_role(client, demo, "admin")
    foreign_uid = other["wallets"][0]["credential_uid"]
    mine_uid = school["wallets"][2]["credential_uid"]
    rows = ("student_number,name,status,parent_email,parent_phone,language,bracelet_uid\n"
            "R-1,Rana A.,active,rana@example.org,+971 50 111 2222,en,04A1B2C3D4E5F6\n"
            f"R-2,Sami B.,,,,,{foreign_uid}\n"
            f"R-3,Tala C.,,,,,{mine_uid}\n"
            "R-4,Umar D.,inactive,bad@,,,\n"
            "R-5,Wafa E.,inactive,,,ar,\n"
            "R-6,Yara F.,,,,de,\n"
            "R-7,Zaid G.,,,,,04a1b2c3d4e5f6\n")
    resp = await _upload(client, admin, rows)
    page = await resp.text()
    assert resp.status == 200, page
    assert "2 created" in page and "5 refused" in page
    for said in ("active in another school", "active on another student",
                 "not an email address", "language must be ar or en", "repeats line 2"):
        assert said in page, said
    rana = await _wallet(db_url, school["school_id"], "R-1")
    assert (rana.parent_email, rana.parent_phone, rana.language) == (
        "rana@example.org", "+971501112222", "en")
    assert (await query(db_url, sa.select(credentials.c.wallet_id, credentials.c.status)
                        .where(credentials.c.uid == "04A1B2C3D4E5F6"))) == [
        (rana.wallet_id, "active")]
    assert await scalar(db_url, sa.select(bracelets.c.state).where(
        bracelets.c.uid == "04A1B2C3D4E5F6")) == "assigned"
    wafa = await _wallet(db_url, school["school_id"], "R-5")
    assert (wafa.student_status, wafa.status) == ("inactive", "closed")
    for refused in ("R-2", "R-3", "R-4", "R-6", "R-7"):
        assert await _wallet(db_url, school["school_id"], refused) is None, refused
    # The foreign school's bracelet stays where it was.
    assert await scalar(db_url, sa.select(credentials.c.wallet_id).where(
        credentials.c.uid == foreign_uid)) == other["wallets"][0]["wallet_id"]

    # Re-import: one update, and a refused file: both kept in the history.
    resp = await _upload(client, admin, "student_number,name,status\nR-5,Wafa E.,active\n",
                         "again.csv")
    assert "1 updated" in await resp.text()
    wafa = await _wallet(db_url, school["school_id"], "R-5")
    assert (wafa.student_status, wafa.status, wafa.left_at) == ("active", "active", None)
    resp = await _upload(client, admin, "who,what\n1,2\n", "wrong.csv")
    assert resp.status == 400
    kept = await query(db_url, sa.select(roster_imports).where(
        roster_imports.c.school_id == school["school_id"]).order_by(roster_imports.c.at))
    assert [(k.filename, k.applied, k.rows_total, k.rows_ok, k.rows_failed) for k in kept] == [
        ("roster.csv", True, 7, 2, 5), ("again.csv", True, 1, 1, 0),
        ("wrong.csv", False, 0, 0, 1)]
    first = kept[0]
    assert {r["student_number"]: r["status"] for r in first.report} == {
        "R-1": "ok", "R-2": "error", "R-3": "error", "R-4": "error", "R-5": "ok",
        "R-6": "error", "R-7": "error"}
    assert next(r for r in first.report if r["student_number"] == "R-2")["row"] == 3

    # Every role of the school reads the history; another school's import is not found.
    for role in ("admin", "manager", "viewer"):
        session = await as_role(client, demo, role)
        listing = await session.page("/admin/imports")
        assert "roster.csv" in listing and "wrong.csv" in listing
        detail = await session.page(f"/admin/imports/{first.import_id}")
        assert "active in another school" in detail and "R-7" in detail
    admin = await as_role(client, demo, "admin")
    csv_resp = await admin.get(f"/admin/imports/{first.import_id}/report.csv")
    body = (await csv_resp.read()).decode("utf-8-sig")
    assert csv_resp.status == 200 and body.splitlines()[0].startswith("row,status")
    assert "R-2" in body and "active in another school" in body
    other_admin = await as_role(client, demo, "admin", school=1)
    assert (await other_admin.get(f"/admin/imports/{first.import_id}")).status == 404
    assert (await other_admin.get(f"/admin/imports/{first.import_id}/report.csv")).status == 404


async def test_history_shows_bracelet_batches_with_uids_masked_for_viewers(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    from shared.ids import mask_uid

    school = demo["schools"][0]
    admin = await as_role(client, demo, "admin")
    resp = await admin.post("/admin/bracelets/stock", {"uids": "uid\n04AABBCCDDEE07\nnope\n"})
    assert resp.status in (200, 303), await resp.text()
    batch = (await query(db_url, sa.select(roster_imports).where(
        roster_imports.c.school_id == school["school_id"],
        roster_imports.c.kind == "bracelets")))[0]
    page = await admin.page(f"/admin/imports/{batch.import_id}")
    assert "04AABBCCDDEE07" in page and 'data-code="error"' in page
    assert 'data-code="ok"' in page
    viewer = await as_role(client, demo, "viewer")
    page = await viewer.page(f"/admin/imports/{batch.import_id}")
    assert "04AABBCCDDEE07" not in page and mask_uid("04AABBCCDDEE07") in page
    body = await (await viewer.get(f"/admin/imports/{batch.import_id}/report.csv")).text()
    assert "04AABBCCDDEE07" not in body
    assert "bracelets" in await viewer.page("/admin/imports?kind=bracelets")


async def test_wallet_list_filters_students_who_left(client: Any, demo: dict[str, Any],
                                                     db_url: str) -> None:
    school = demo["schools"][0]
    leaver, staying = school["wallets"][3], school["wallets"][4]
    admin = await as_role(client, demo, "admin")
    page = await admin.page(f"/admin/wallets/{leaver['wallet_id']}/edit")
    assert 'name="display_name"' in page
    row = (await query(db_url, sa.select(wallets).where(
        wallets.c.wallet_id == leaver["wallet_id"])))[0]
    resp = await admin.post(f"/admin/wallets/{leaver['wallet_id']}/edit", {
        "display_name": row.display_name, "student_number": row.student_number,
        "grade": row.grade, "homeroom": row.homeroom, "student_status": "inactive"})
    assert resp.status == 303
    listing = await admin.page("/admin/wallets?status=inactive")
    assert leaver["wallet_id"] in listing and staying["wallet_id"] not in listing
