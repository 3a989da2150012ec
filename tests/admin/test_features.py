"""What admins do in the console, checked through its effects: ledger, snapshot, device API."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import sqlalchemy as sa

from sync_server.ledger.audit import audit
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import audit_log, credential_events, credentials, wallets
from tests.server.helpers import auth, enroll, push, sale, snapshot, void_of

from .conftest import as_role, query, scalar


async def ledger_ok(db_url: str) -> bool:
    engine = create_engine(db_url)
    try:
        return bool((await audit(engine))["ok"])
    finally:
        await engine.dispose()


async def balance(db_url: str, wallet_id: str) -> int:
    return int(await scalar(db_url, sa.select(wallets.c.balance)
                            .where(wallets.c.wallet_id == wallet_id)))


async def test_sales_list_filters_detail_and_csv(client: Any, demo: dict[str, Any]) -> None:
    school = demo["schools"][0]
    dev = await enroll(client, school["enrollment_code"])
    target = school["wallets"][4]
    sales = [sale(school, 1, wallet=4, items=(3,)), sale(school, 2, wallet=5),
             sale(school, 3, wallet=5, cashier=1, total=1)]  # total mismatch -> rejected
    out = await push(client, dev["device_token"], sales)
    assert [r["status"] for r in out["results"]] == ["applied", "applied", "rejected"]
    admin = await as_role(client, demo, "admin")

    page = await admin.page(f"/admin/sales?student={target['display_name']}")
    assert sales[0]["ref"] in page
    by_status = await admin.page("/admin/sales?status=rejected")
    assert sales[2]["ref"] in by_status and sales[1]["ref"] not in by_status
    by_cashier = await admin.page(
        f"/admin/sales?cashier={school['cashiers'][1]['cashier_id']}")
    assert sales[2]["ref"] in by_cashier and sales[0]["ref"] not in by_cashier
    by_device = await admin.page(f"/admin/sales?device={dev['device_id']}&from=2000-01-01")
    assert all(s["ref"] in by_device for s in sales)
    assert sales[0]["ref"] not in await admin.page("/admin/sales?to=2000-01-01")

    detail = await admin.page(f"/admin/sales/{sales[0]['ref']}")
    assert school["products"][3]["name"] in detail
    assert "Terminal time" in detail and "Received" in detail
    assert f"{school['school_id']}:revenue" in detail  # its postings are listed
    assert (await admin.get("/admin/sales/not-a-ref")).status == 404

    resp = await admin.get("/admin/sales.csv?status=applied")
    assert resp.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(await resp.text(encoding="utf-8-sig"))))
    assert {r["ref"] for r in rows} == {sales[0]["ref"], sales[1]["ref"]}
    first = next(r for r in rows if r["ref"] == sales[0]["ref"])
    assert first["total"] == "12.00" and first["student"] == target["display_name"]


async def test_csv_export_neutralises_formulas(client: Any, demo: dict[str, Any],
                                               db_url: str) -> None:
    school = demo["schools"][0]
    engine = create_engine(db_url)
    async with engine.begin() as conn:
        await conn.execute(sa.update(wallets).where(
            wallets.c.wallet_id == school["wallets"][2]["wallet_id"])
            .values(display_name='=HYPERLINK("http://x","y")'))
    await engine.dispose()
    dev = await enroll(client, school["enrollment_code"])
    await push(client, dev["device_token"], [sale(school, 1, wallet=2)])
    admin = await as_role(client, demo, "admin")
    text = await (await admin.get("/admin/sales.csv")).text()
    assert "'=HYPERLINK" in text


async def test_overdraft_sale_reviewed_and_reversed_once(client: Any, demo: dict[str, Any],
                                                         db_url: str) -> None:
    school = demo["schools"][0]
    wallet = school["wallets"][6]
    dev = await enroll(client, school["enrollment_code"])
    start = await balance(db_url, wallet["wallet_id"])
    qty = start // school["products"][5]["price"] + 1
    big = sale(school, 1, wallet=6, items=(5,), qty=qty)
    out = await push(client, dev["device_token"], [big])
    assert out["results"][0]["flags"][0] == "overdraft"
    admin = await as_role(client, demo, "admin")
    queue = await admin.page("/admin/exceptions")
    assert big["ref"] in queue and "overdraft" in queue

    resp = await admin.post(f"/admin/sales/{big['ref']}/reverse", {"reason": ""})
    assert resp.status == 400  # a reason is required
    resp = await admin.post(f"/admin/sales/{big['ref']}/reverse",
                            {"reason": "two terminals sold offline"})
    assert resp.status == 303
    assert await balance(db_url, wallet["wallet_id"]) == start
    again = await admin.post(f"/admin/sales/{big['ref']}/reverse", {"reason": "again"})
    assert again.status == 303 and "err" in again.cookies["pos_flash"].value
    assert await balance(db_url, wallet["wallet_id"]) == start
    # A terminal voiding the reversed sale later cannot refund it a second time.
    out = await push(client, dev["device_token"], [void_of(big, 2)])
    assert out["results"][0]["code"] == "void_twice"
    assert await balance(db_url, wallet["wallet_id"]) == start
    assert await ledger_ok(db_url)
    assert big["ref"] not in await admin.page("/admin/exceptions")  # reversal reviews it
    detail = await admin.page(f"/admin/sales/{big['ref']}")
    assert "reversal" in detail and "Reverse this sale" not in detail
    entry = (await query(db_url, sa.select(audit_log.c.before, audit_log.c.after,
                                            audit_log.c.note, audit_log.c.actor_email)
                         .where(audit_log.c.action == "sale_reversed")))[0]
    assert entry.after["balance"] == start and entry.before["balance"] < 0
    assert entry.actor_email == school["admin"]["email"]


async def test_reversed_sale_no_longer_counts_against_the_daily_limit(
        client: Any, demo: dict[str, Any]) -> None:
    school = demo["schools"][0]
    assert school["wallets"][3]["daily_limit"] == 1500  # demo: product 5 costs 1500
    dev = await enroll(client, school["enrollment_code"])
    token = dev["device_token"]
    lunch = sale(school, 1, wallet=3, items=(5,))
    second = sale(school, 2, wallet=3, items=(5,))
    out = await push(client, token, [lunch, second])
    assert out["results"][0]["flags"] == []
    # (plus "overdraft" when the demo's random balance is under the two lunches)
    assert "daily_limit_exceeded" in out["results"][1]["flags"]
    admin = await as_role(client, demo, "admin")
    for ref in (lunch["ref"], second["ref"]):
        resp = await admin.post(f"/admin/sales/{ref}/reverse", {"reason": "charged by mistake"})
        assert resp.status == 303
    again = await push(client, token, [sale(school, 3, wallet=3, items=(5,))])
    assert again["results"][0]["flags"] == []


async def test_missing_seqs_and_conflicts_reviewed(client: Any, demo: dict[str, Any],
                                                   db_url: str) -> None:
    school = demo["schools"][0]
    dev = await enroll(client, school["enrollment_code"], "Till 9")
    one = sale(school, 1)
    await push(client, dev["device_token"], [one, sale(school, 4)])
    await push(client, dev["device_token"], [dict(one, total=one["total"] + 150,
                                                  lines=[dict(one["lines"][0], quantity=2)])])
    admin = await as_role(client, demo, "admin")
    queue = await admin.page("/admin/exceptions")
    assert "Missing seqs (2)" in queue and "Conflicting sales (1)" in queue
    dash = await admin.page("/admin/")
    assert 'id="open-exceptions">3<' in dash
    resp = await admin.post(f"/admin/exceptions/gaps/{dev['device_id']}/2/review",
                            {"note": "till crashed"})
    assert resp.status == 303
    assert (await admin.post(f"/admin/exceptions/gaps/{dev['device_id']}/77/review",
                             {"note": "x"})).status == 404
    assert "Missing seqs (1)" in await admin.page("/admin/exceptions")
    actions = [r[0] for r in await query(db_url, sa.select(audit_log.c.action))]
    assert "missing_seq_reviewed" in actions


async def test_roster_import_reports_and_updates(client: Any, demo: dict[str, Any],
                                                 db_url: str) -> None:
    school, other = demo["schools"]
    admin = await as_role(client, demo, "admin")
    rows = ("student_number,name,grade,daily_limit,status,school_id\n"
            f"S-1,Amal K.,Grade 2,15.00,,{school['school_id']}\n"
            "S-2,Bilal M.,Grade 3,,,\n"
            ",No Number,Grade 3,,,\n"
            "S-3,Chris P.,Grade 3,12.345,,\n"
            f"S-4,Other School,Grade 1,,,{other['school_id']}\n"
            "S-1,Amal again,,,,\n"
            "S-5,Dana R.,Grade 1,,sleeping,\n")

    async def upload(text: str) -> str:
        form = aiohttp.FormData()
        form.add_field("csrf_token", admin.csrf)
        form.add_field("file", text.encode(), filename="roster.csv", content_type="text/csv")
        resp = await client.post("/admin/roster", data=form)
        assert resp.status == 200, await resp.text()
        return str(await resp.text())

    report = await upload(rows)
    assert "2 created, 0 updated, 0 unchanged" in report and "5 refused" in report
    for reason in ("student_number is empty", "at most 2 decimals",
                   "row belongs to another school", "repeats line 2", "status must be"):
        assert reason in report, reason
    stored = {r.student_number: r for r in await query(
        db_url, sa.select(wallets).where(wallets.c.school_id == school["school_id"],
                                         wallets.c.student_number.in_(["S-1", "S-2", "S-4"])))}
    assert set(stored) == {"S-1", "S-2"} and stored["S-1"].daily_limit == 1500
    assert await scalar(db_url, sa.select(sa.func.count()).select_from(wallets)
                        .where(wallets.c.student_number == "S-4")) == 0

    dev = await enroll(client, school["enrollment_code"])
    first = await snapshot(client, dev["device_token"])
    report = await upload("student_number,name,daily_limit\nS-1,Amal Karim,\nS-2,Bilal M.,\n")
    assert "0 created, 1 updated, 1 unchanged" in report
    amal = (await query(db_url, sa.select(wallets).where(
        wallets.c.school_id == school["school_id"], wallets.c.student_number == "S-1")))[0]
    assert amal.display_name == "Amal Karim" and amal.daily_limit is None
    delta = await snapshot(client, dev["device_token"], first["cursor"])
    assert [w["display_name"] for w in delta["wallets"]] == ["Amal Karim"]

    bad = aiohttp.FormData()
    bad.add_field("csrf_token", admin.csrf)
    bad.add_field("file", b"who,what\n1,2\n", filename="x.csv")
    resp = await client.post("/admin/roster", data=bad)
    assert resp.status == 400 and "missing: student_number, name" in await resp.text()
    entries = await query(db_url, sa.select(audit_log.c.after)
                          .where(audit_log.c.action == "roster_imported"))
    assert next(e.after for e in entries) == {"created": 2, "updated": 0, "unchanged": 0,
                                             "refused": 5}


async def test_block_and_replace_bracelet_reach_terminals(client: Any, demo: dict[str, Any],
                                                          db_url: str) -> None:
    school = demo["schools"][0]
    wallet = school["wallets"][8]
    old, new = wallet["credential_uid"], "04C0FFEE000001"
    dev = await enroll(client, school["enrollment_code"])
    first = await snapshot(client, dev["device_token"])
    admin = await as_role(client, demo, "admin")

    other_uid = school["wallets"][9]["credential_uid"]
    taken = await admin.post(f"/admin/bracelets/{old}/replace", {"new_uid": other_uid})
    assert "err" in taken.cookies["pos_flash"].value  # active on another wallet
    creds = {r.uid: r.status for r in await query(
        db_url, sa.select(credentials.c.uid, credentials.c.status)
        .where(credentials.c.wallet_id == wallet["wallet_id"]))}
    assert creds[old] == "active"  # the failed replace rolled back the block

    resp = await admin.post(f"/admin/bracelets/{old}/replace", {"new_uid": "04:c0:ff:ee:00:00:01"})
    assert resp.status == 303 and "err" not in resp.cookies["pos_flash"].value
    delta = await snapshot(client, dev["device_token"], first["cursor"])
    got = {c["uid"]: (c["wallet_id"], c["status"]) for c in delta["credentials"]}
    assert got[old] == (wallet["wallet_id"], "blocked")
    assert got[new] == (wallet["wallet_id"], "active")
    history = await admin.page(f"/admin/bracelets/{old}")
    assert "replaced by" in history and new in history
    events = await query(db_url, sa.select(credential_events.c.uid, credential_events.c.action)
                         .where(credential_events.c.uid.in_([old, new]))
                         .order_by(credential_events.c.event_id))
    # The seed's assignment is in the history too (every path writes it, records.py).
    assert [tuple(e) for e in events] == [(old, "assigned"), (old, "replaced_by"),
                                          (new, "replaces")]

    assert (await admin.post(f"/admin/bracelets/{new}/block")).status == 303
    delta2 = await snapshot(client, dev["device_token"], delta["cursor"])
    assert [(c["uid"], c["status"]) for c in delta2["credentials"]] == [(new, "blocked")]
    # A sale with the blocked bracelet is applied but flagged for review.
    after_block = datetime.now(UTC) + timedelta(seconds=1)
    out = await push(client, dev["device_token"],
                     [sale(school, 1, wallet=8, uid=new, created_at=after_block)])
    assert "credential_blocked" in out["results"][0]["flags"]
    assert "credential_blocked" in await admin.page("/admin/exceptions")


async def test_revoked_device_gets_403(client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    dev = await enroll(client, school["enrollment_code"], "Counter 7")
    admin = await as_role(client, demo, "admin")
    page = await admin.page("/admin/devices")
    assert "Counter 7" in page and "online" in page
    resp = await admin.post(f"/admin/devices/{dev['device_id']}/revoke", {"reason": "stolen"})
    assert resp.status == 303
    denied = await client.get("/api/v1/sync/snapshot", headers=auth(dev["device_token"]))
    assert denied.status == 403
    created = await admin.post("/admin/devices/enrollment-codes")
    code_page = await created.text()
    assert 'id="enrollment-code"' in code_page
    code = code_page.split('id="enrollment-code">')[1].split("<")[0]
    assert (await enroll(client, code, "Counter 8"))["school_id"] == school["school_id"]
    entry = (await query(db_url, sa.select(audit_log.c.before, audit_log.c.after,
                                            audit_log.c.note)
                         .where(audit_log.c.action == "device_revoked")))[0]
    assert entry.before["status"] == "active" and entry.after["status"] == "revoked"
    assert entry.note == "stolen"
    notes = " ".join(str(r) for r in await query(db_url, sa.select(audit_log)))
    assert code not in notes  # the code is shown once, never stored in clear


async def test_wallet_money_limits_and_freeze(client: Any, demo: dict[str, Any],
                                              db_url: str) -> None:
    school = demo["schools"][0]
    wallet = school["wallets"][12]
    wid = wallet["wallet_id"]
    start = await balance(db_url, wid)
    dev = await enroll(client, school["enrollment_code"])
    first = await snapshot(client, dev["device_token"])
    admin = await as_role(client, demo, "admin")
    base = f"/admin/wallets/{wid}"
    for bad in ({"kind": "topup", "amount": "10", "reason": ""},
                {"kind": "topup", "amount": "1.001", "reason": "x"},
                {"kind": "topup", "amount": "-5", "reason": "x"},
                {"kind": "gift", "amount": "5", "reason": "x"}):
        resp = await admin.post(f"{base}/money", bad)
        assert "err" in resp.cookies["pos_flash"].value, bad
    assert await balance(db_url, wid) == start
    await admin.post(f"{base}/money", {"kind": "topup", "amount": "25.50", "reason": "cash"})
    await admin.post(f"{base}/money", {"kind": "adjustment", "amount": "-0.50",
                                       "reason": "rounding"})
    assert await balance(db_url, wid) == start + 2500
    await admin.post(f"{base}/settings", {"daily_limit": "7.5"})
    await admin.post(f"{base}/settings", {"status": "frozen"})
    delta = await snapshot(client, dev["device_token"], first["cursor"])
    row = next(w for w in delta["wallets"] if w["wallet_id"] == wid)
    assert (row["balance"], row["daily_limit"], row["status"]) == (start + 2500, 750, "frozen")
    page = await admin.page(base)
    assert "manual top-up: cash" in page and "manual adjustment: rounding" in page
    assert await ledger_ok(db_url)
    actions = [r.action for r in await query(db_url, sa.select(audit_log.c.action)
                                             .where(audit_log.c.target_id == wid))]
    assert actions == ["wallet_topup", "wallet_adjustment", "wallet_updated", "wallet_frozen"]
    await admin.post(f"{base}/settings", {"status": "active"})
    assert (await query(db_url, sa.select(wallets.c.status)
                        .where(wallets.c.wallet_id == wid)))[0][0] == "active"


async def test_products_and_cashiers(client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    dev = await enroll(client, school["enrollment_code"])
    first = await snapshot(client, dev["device_token"])
    admin = await as_role(client, demo, "admin")
    await admin.post("/admin/products", {"name": "Mint tea", "category": "Drinks",
                                         "price": "2.25"})
    pid = school["products"][1]["product_id"]
    await admin.post(f"/admin/products/{pid}", {"price": "3.50"})
    await admin.post(f"/admin/products/{pid}", {"active": "0"})
    cid = school["cashiers"][0]["cashier_id"]
    bad = await admin.post(f"/admin/cashiers/{cid}", {"pin": "12"})
    assert "err" in bad.cookies["pos_flash"].value
    await admin.post(f"/admin/cashiers/{cid}", {"pin": "98765"})
    await admin.post("/admin/cashiers", {"name": "Maha", "pin": "2468"})
    delta = await snapshot(client, dev["device_token"], first["cursor"])
    products = {p["name"]: p for p in delta["products"]}
    assert products["Mint tea"]["price"] == 225
    assert (products[school["products"][1]["name"]]["price"],
            products[school["products"][1]["name"]]["active"]) == (350, False)
    cashiers = {c["name"]: c for c in delta["cashiers"]}
    assert {"Maha", school["cashiers"][0]["name"]} <= set(cashiers)
    entries = await query(db_url, sa.select(audit_log.c.action, audit_log.c.before,
                                             audit_log.c.after).order_by(audit_log.c.audit_id))
    by_action = {e.action: e for e in entries}
    assert by_action["product_updated"].before == {"price": 300}
    assert by_action["product_updated"].after == {"price": 350}
    assert by_action["product_deactivated"].after == {"active": False}
    assert "98765" not in str(entries) and "2468" not in str(entries)
    audit_page = await admin.page("/admin/audit?action=cashier_pin_reset")
    table = audit_page.split('id="audit"')[1]
    assert 'data-code="cashier_pin_reset"' in table and 'data-code="product_created"' not in table
