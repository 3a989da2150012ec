"""The bracelet console pages on both databases: issuing a class by tapping (form posts as a
keyboard-wedge reader makes them), stock import with its kept row report, delivery and
retirement, who may do which, and UIDs masked for viewers."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import sqlalchemy as sa

from shared.ids import mask_uid
from sync_server.storage.schema import (
    audit_log,
    bracelets,
    credential_events,
    credentials,
    roster_imports,
    wallets,
)

from .conftest import as_role, query, scalar


def flash(resp: Any) -> str:
    return unquote(resp.cookies["pos_flash"].value)


async def _class_of(db_url: str, wallet_id: str) -> tuple[str, str]:
    row = (await query(db_url, sa.select(wallets.c.grade, wallets.c.homeroom)
                       .where(wallets.c.wallet_id == wallet_id)))[0]
    return row.grade, row.homeroom


async def _free_class(db_url: str, school: dict[str, Any]) -> tuple[str, str, list[str]]:
    """Block every bracelet of one demo class so its students wait for new ones."""
    grade, homeroom = await _class_of(db_url, school["wallets"][1]["wallet_id"])
    ids = [w["wallet_id"] for w in school["wallets"]
           if w["grade"] == grade and w["homeroom"] == homeroom and w["status"] != "closed"]
    from sync_server import records
    from sync_server.storage.engine import create_engine

    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            for w in school["wallets"]:
                if w["wallet_id"] in ids:
                    await records.block_credential(conn, school["school_id"],
                                                   w["credential_uid"], reason="other")
    finally:
        await engine.dispose()
    return grade, homeroom, ids


async def test_issuing_a_class_by_tapping(client: Any, demo: dict[str, Any],
                                          db_url: str) -> None:
    school, other = demo["schools"]
    grade, homeroom, ids = await _free_class(db_url, school)
    manager = await as_role(client, demo, "manager")
    url = f"/admin/bracelets/issue?grade={grade}&homeroom={homeroom}"
    page = await manager.page(url)
    assert 'id="issue-uid"' in page and "autofocus" in page
    assigned: list[str] = []
    n = 0
    while 'id="issue-student"' in page:
        wallet_id = page.split('name="wallet_id" value="')[1].split('"')[0]
        form = {"wallet_id": wallet_id, "grade": grade, "homeroom": homeroom, "skip": ""}
        if n == 0:  # a misread, and a bracelet active in the other school: not advanced
            bad = await manager.post("/admin/bracelets/issue", {**form, "uid": "xyz"})
            assert bad.status == 303 and "not a bracelet UID" in flash(bad)
            theirs = other["wallets"][3]["credential_uid"]
            bad = await manager.post("/admin/bracelets/issue", {**form, "uid": theirs})
            assert "active in another school" in flash(bad)
            assert wallet_id in await manager.page(url)
        uid = f"0f:ee:00:00:00:{n:02x}"  # as some readers type it
        resp = await manager.post("/admin/bracelets/issue", {**form, "uid": uid})
        assert resp.status == 303 and resp.headers["Location"].startswith(
            "/admin/bracelets/issue?"), flash(resp)
        assert "assigned to" in flash(resp)
        assigned.append(wallet_id)
        n += 1
        page = await manager.page(resp.headers["Location"])
    assert sorted(assigned) == sorted(ids) and 'id="issue-done"' in page
    rows = await query(db_url, sa.select(bracelets.c.uid, bracelets.c.state, bracelets.c.wallet_id)
                       .where(bracelets.c.uid.like("0FEE%")))
    assert len(rows) == len(ids) and {r.state for r in rows} == {"assigned"}
    audited = await scalar(db_url, sa.select(sa.func.count()).where(
        audit_log.c.action == "bracelet_assigned", audit_log.c.target_id.like("0FEE%")))
    assert audited == len(ids)

    # Tapping the same bracelet again for the same student: said, nothing doubled.
    again = await manager.post("/admin/bracelets/issue", {
        "wallet_id": rows[0].wallet_id, "uid": rows[0].uid, "grade": grade,
        "homeroom": homeroom})
    assert "already this student's" in flash(again)

    # The whole class handed over in one step.
    assert 'id="deliver-class"' in page
    resp = await manager.post("/admin/bracelets/issue/deliver",
                              {"grade": grade, "homeroom": homeroom})
    assert f"{len(ids)} bracelets recorded as delivered" in flash(resp)
    states = await query(db_url, sa.select(bracelets.c.state).where(
        bracelets.c.uid.like("0FEE%")))
    assert {s.state for s in states} == {"delivered"}
    history = await query(db_url, sa.select(credential_events.c.action).where(
        credential_events.c.uid == rows[0].uid).order_by(credential_events.c.event_id))
    assert [h.action for h in history] == ["assigned", "delivered"]
    page = await manager.page(f"/admin/bracelets/{rows[0].uid}")
    assert "issued by tapping on a reader" in page and 'data-code="delivered"' in page


async def test_skip_leaves_an_absent_student_for_later(client: Any, demo: dict[str, Any],
                                                       db_url: str) -> None:
    school = demo["schools"][0]
    grade, homeroom, _ids = await _free_class(db_url, school)
    admin = await as_role(client, demo, "admin")
    page = await admin.page(f"/admin/bracelets/issue?grade={grade}&homeroom={homeroom}")
    first = page.split('name="wallet_id" value="')[1].split('"')[0]
    skip = page.split('id="issue-skip"')[0].rsplit('href="', 1)[1].split('"')[0]
    page = await admin.page(skip.replace("&amp;", "&"))
    second = page.split('name="wallet_id" value="')[1].split('"')[0]
    assert second != first and 'id="issue-later"' in page


async def test_stock_import_report_is_kept(client: Any, demo: dict[str, Any],
                                           db_url: str) -> None:
    school, other = demo["schools"]
    admin = await as_role(client, demo, "admin")
    theirs = other["wallets"][2]["credential_uid"]
    mine = school["wallets"][2]["credential_uid"]
    body = ("Tag UID,Batch\n0f:bb:00:00:00:01,7\n0F-BB-00-00-00-02,7\n0fbb00000001,7\n"
            f"zz,7\n{theirs},7\n{mine},7\n")
    resp = await admin.post("/admin/bracelets/stock", {"uids": body})
    assert resp.status == 200
    page = await resp.text()
    assert "2 added to stock, 4 refused" in page
    for said in ("twice in this file (first on line 2)", "not a bracelet UID",
                 "active in another school", "already in this school"):
        assert said in page, said
    stocked = await query(db_url, sa.select(bracelets.c.uid, bracelets.c.state,
                                            bracelets.c.batch_id)
                          .where(bracelets.c.uid.like("0FBB%")).order_by(bracelets.c.uid))
    assert [(r.uid, r.state) for r in stocked] == [("0FBB00000001", "in_stock"),
                                                    ("0FBB00000002", "in_stock")]
    kept = (await query(db_url, sa.select(roster_imports).where(
        roster_imports.c.kind == "bracelets")))[0]
    assert kept.import_id == stocked[0].batch_id and kept.applied
    assert (kept.rows_total, kept.rows_ok, kept.rows_failed) == (6, 2, 4)
    assert [r["status"] for r in kept.report] == ["ok", "ok", "error", "error", "error",
                                                  "error"]
    assert kept.report[3]["uid"] == "zz" and "not a bracelet UID" in kept.report[3]["message"]
    # A file refused as a whole changes nothing and is kept as not applied.
    resp = await admin.post("/admin/bracelets/stock", {"uids": "colour,size\nred,M\n"})
    assert resp.status == 400 and "no UID column" in await resp.text()
    refused = await query(db_url, sa.select(roster_imports.c.applied,
                                            roster_imports.c.rows_failed).where(
        roster_imports.c.kind == "bracelets"))
    assert sorted((r.applied, r.rows_failed) for r in refused) == [(False, 1), (True, 4)]
    # Both are in the import history.
    history = await admin.page("/admin/imports")
    assert history.count("/admin/imports/imp_") >= 2
    assert await scalar(db_url, sa.select(sa.func.count()).where(
        bracelets.c.uid.like("0FBB%"))) == 2
    # A bare list and a tap.
    resp = await admin.post("/admin/bracelets/stock", {"uids": "0fbb000003\n0fbb000004\n"})
    assert "2 added to stock, 0 refused" in await resp.text()
    tap = await admin.post("/admin/bracelets/stock/tap", {"uid": "0f bb 00 00 05"})
    assert tap.status == 303 and "added to stock" in flash(tap)
    tap = await admin.post("/admin/bracelets/stock/tap", {"uid": "0fbb000005"})
    assert "already in this school" in flash(tap)
    # A stocked bracelet is then given out through the same checks.
    resp = await admin.post("/admin/bracelets/assign", {
        "wallet_id": school["wallets"][4]["wallet_id"], "uid": "0FBB00000001"})
    assert "assigned" in flash(resp) and "Not" not in flash(resp)
    history = await query(db_url, sa.select(credential_events.c.action).where(
        credential_events.c.uid == "0FBB00000001").order_by(credential_events.c.event_id))
    assert [h.action for h in history] == ["stocked", "assigned"]


async def test_roles_on_the_bracelet_pages(client: Any, demo: dict[str, Any],
                                           db_url: str) -> None:
    """One role at a time (the test client keeps one session cookie)."""
    school, other = demo["schools"]
    uid = school["wallets"][5]["credential_uid"]
    theirs = other["wallets"][5]["credential_uid"]
    refused = [("/admin/bracelets/stock", {"uids": "0F0E0D000001"}),
               ("/admin/bracelets/stock/tap", {"uid": "0F0E0D000002"}),
               (f"/admin/bracelets/{uid}/retire", {}),
               (f"/admin/bracelets/{uid}/block", {"reason": "lost"})]
    issuing = [("/admin/bracelets/issue/deliver", {"grade": "x", "homeroom": "y"}),
               (f"/admin/bracelets/{uid}/deliver", {}),
               ("/admin/bracelets/issue", {"wallet_id": school["wallets"][5]["wallet_id"],
                                           "uid": "0F0E0D000003"})]
    viewer = await as_role(client, demo, "viewer")
    assert (await viewer.get("/admin/bracelets/issue")).status == 403
    assert (await viewer.get("/admin/bracelets/stock")).status == 403
    for path, data in refused + issuing:
        assert (await viewer.post(path, data)).status == 403, path

    manager = await as_role(client, demo, "manager")
    assert (await manager.get("/admin/bracelets/issue")).status == 200
    assert (await manager.get("/admin/bracelets/stock")).status == 403
    for path, data in refused:
        assert (await manager.post(path, data)).status == 403, path
    for path, data in issuing:
        assert (await manager.post(path, data, csrf=False)).status == 403, path
    assert await scalar(db_url, sa.select(sa.func.count()).where(
        bracelets.c.uid.like("0F0E0D%"))) == 0
    assert await scalar(db_url, sa.select(bracelets.c.state).where(
        bracelets.c.uid == uid)) == "assigned"
    # Another school's bracelet or student is not found.
    assert (await manager.post(f"/admin/bracelets/{theirs}/deliver", {})).status == 404
    resp = await manager.post("/admin/bracelets/issue", {
        "wallet_id": other["wallets"][6]["wallet_id"], "uid": "0F0E0D000004"})
    assert resp.status == 404
    # The manager records a delivery.
    resp = await manager.post(f"/admin/bracelets/{uid}/deliver", {})
    assert "recorded as delivered" in flash(resp)

    admin = await as_role(client, demo, "admin")
    assert (await admin.post(f"/admin/bracelets/{theirs}/deliver", {})).status == 404
    assert (await admin.post(f"/admin/bracelets/{theirs}/retire", {})).status == 404
    assert await scalar(db_url, sa.select(bracelets.c.state).where(
        bracelets.c.uid == theirs)) == "assigned"
    resp = await admin.post(f"/admin/bracelets/{uid}/retire", {})
    assert "Not retired" in flash(resp)  # a delivered bracelet is blocked first
    resp = await admin.post(f"/admin/bracelets/{uid}/block", {"reason": "damaged",
                                                              "back": f"/admin/bracelets/{uid}"})
    assert resp.headers["Location"] == f"/admin/bracelets/{uid}"
    resp = await admin.post(f"/admin/bracelets/{uid}/retire", {"note": "cracked"})
    assert "retired" in flash(resp)
    page = await admin.page(f"/admin/bracelets/{uid}")
    for code in ("assigned", "delivered", "blocked", "retired"):
        assert f'data-code="{code}"' in page, code
    status = await scalar(db_url, sa.select(credentials.c.status).where(
        credentials.c.uid == uid))
    assert status == "blocked"
    actions = [r.action for r in await query(db_url, sa.select(audit_log.c.action).where(
        audit_log.c.target_id == uid).order_by(audit_log.c.audit_id))]
    assert actions == ["bracelet_delivered", "bracelet_blocked", "bracelet_retired"]


async def test_viewers_see_uids_masked_on_bracelet_pages(client: Any, demo: dict[str, Any],
                                                         db_url: str) -> None:
    school = demo["schools"][0]
    uid = school["wallets"][6]["credential_uid"]
    viewer = await as_role(client, demo, "viewer")
    for path in ("/admin/bracelets", f"/admin/bracelets/{uid}",
                 "/admin/bracelets?state=assigned"):
        page = await viewer.page(path)
        assert uid not in page.replace(f"/admin/bracelets/{uid}\"", ""), path
    listing = await viewer.page("/admin/bracelets?state=blocked")
    assert mask_uid(school["blocked_credential_uid"]) in listing
    assert school["blocked_credential_uid"] not in listing
    admin = await as_role(client, demo, "admin")
    listing = await admin.page("/admin/bracelets?state=blocked")
    assert school["blocked_credential_uid"] in listing and uid not in listing
    page = await admin.page(f"/admin/bracelets/{uid}")
    assert uid in page and 'data-code="assigned"' in page


async def test_history_rows_written_by_the_upgrade_are_shown(client: Any, demo: dict[str, Any],
                                                            db_url: str) -> None:
    """Bracelets that existed before 0010 got an 'assigned' row noted by the upgrade."""
    from shared.clock import utcnow
    from sync_server.storage.engine import create_engine

    school = demo["schools"][0]
    uid = school["wallets"][7]["credential_uid"]
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.delete(credential_events).where(credential_events.c.uid == uid))
            await conn.execute(sa.insert(credential_events).values(
                school_id=school["school_id"], uid=uid,
                wallet_id=school["wallets"][7]["wallet_id"], action="assigned", at=utcnow(),
                note="recorded by upgrade 0010"))
    finally:
        await engine.dispose()
    admin = await as_role(client, demo, "admin")
    page = await admin.page(f"/admin/bracelets/{uid}")
    assert "recorded by upgrade 0010" in page
    page = await admin.page(f"/admin/bracelets/{uid}?lang=ar")
    assert "سجّلته الترقية 0010" in page
