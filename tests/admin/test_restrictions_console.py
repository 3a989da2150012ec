"""The console's v1.1 forms against the real app: a wallet's restrictions, grade and homeroom;
product allergens and till order; the roster's new columns and the files Excel saves (UTF-8
with a BOM, Arabic Windows-1256), with bad input refused in words and nothing changed."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote, unquote

import aiohttp
import sqlalchemy as sa

from sync_server.storage.schema import audit_log, products, wallet_restrictions, wallets
from tests.server.helpers import enroll, snapshot

from .conftest import Session, as_role, audit_actions, query


def flash(resp: Any) -> str:
    return unquote(resp.cookies["pos_flash"].value) if "pos_flash" in resp.cookies else ""


async def active_rows(db_url: str, wallet_id: str) -> set[tuple[str, str]]:
    rows = await query(db_url, sa.select(wallet_restrictions.c.kind, wallet_restrictions.c.value)
                       .where(wallet_restrictions.c.wallet_id == wallet_id,
                              wallet_restrictions.c.until.is_(None)))
    return {(r.kind, r.value) for r in rows}


async def test_wallet_restrictions_form_sets_lifts_and_reaches_tills(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school, other = demo["schools"]
    wallet = school["wallets"][4]["wallet_id"]
    granola, water = school["products"][7], school["products"][0]
    token = (await enroll(client, school["enrollment_code"]))["device_token"]
    first = await snapshot(client, token)
    admin = await as_role(client, demo, "admin")
    page = await admin.page(f"/admin/wallets/{wallet}")
    assert 'id="restrictions-form"' in page and "No restriction" in page
    assert 'value="Snacks"' in page and f'value="{granola["product_id"]}"' in page

    resp = await admin.post(f"/admin/wallets/{wallet}/restrictions", {
        "category": "Snacks", "product": water["product_id"],
        "allergens": " Peanut,  TREE nuts ,peanut"})
    assert resp.status == 303 and flash(resp).startswith("ok:"), flash(resp)
    assert await active_rows(db_url, wallet) == {
        ("category", "Snacks"), ("product", water["product_id"]), ("allergen", "peanut"),
        ("allergen", "tree nuts")}
    page = await admin.page(f"/admin/wallets/{wallet}")
    assert "peanut, tree nuts" in page and water["name"] in page
    assert 'id="restriction-history"' in page
    delta = await snapshot(client, token, first["cursor"])
    assert delta["wallets"][0]["restrictions"] == {
        "blocked_categories": ["Snacks"], "blocked_products": [water["product_id"]],
        "allergens": ["peanut", "tree nuts"]}

    # Unticking everything lifts all of it (history kept, nothing deleted).
    resp = await admin.post(f"/admin/wallets/{wallet}/restrictions", {"allergens": ""})
    assert flash(resp).startswith("ok:") and await active_rows(db_url, wallet) == set()
    assert len(await query(db_url, sa.select(wallet_restrictions.c.restriction_id)
                           .where(wallet_restrictions.c.wallet_id == wallet))) == 4
    resp = await admin.post(f"/admin/wallets/{wallet}/restrictions", {"allergens": ""})
    assert "Nothing changed" in flash(resp)
    actions = await audit_actions(db_url, school["school_id"])
    assert actions.count("wallet_restrictions_set") == 2

    # Refused in words, nothing written: another school's product, an unknown category,
    # control characters, an over-long list.
    before = await query(db_url, sa.select(wallet_restrictions))
    for form, words in (
            ({"product": other["products"][0]["product_id"]}, "no product"),
            ({"category": "Sweets"}, "no category 'Sweets'"),
            ({"allergens": "milk\x1b[31m"}, "invisible or control"),
            ({"allergens": ",".join(f"a{i}" for i in range(101))}, "more than 100"),
            ({"allergens": "x" * 2001}, "longer than 2000")):
        resp = await admin.post(f"/admin/wallets/{wallet}/restrictions", form)
        assert resp.status == 303 and flash(resp).startswith("err:Not saved"), form
        assert words in flash(resp), (words, flash(resp))
    assert await query(db_url, sa.select(wallet_restrictions)) == before
    # Another school's wallet does not exist here.
    resp = await admin.post(f"/admin/wallets/{other['wallets'][0]['wallet_id']}/restrictions",
                            {"allergens": "milk"})
    assert resp.status == 404


async def test_grade_and_homeroom_are_edited_on_the_wallet_page(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    wallet = school["wallets"][5]["wallet_id"]
    admin = await as_role(client, demo, "admin")
    resp = await admin.post(f"/admin/wallets/{wallet}/settings",
                            {"grade": "الصف الرابع", "homeroom": "٤ب"})
    assert flash(resp).startswith("ok:"), flash(resp)
    row = (await query(db_url, sa.select(wallets.c.grade, wallets.c.homeroom)
                       .where(wallets.c.wallet_id == wallet)))[0]
    assert (row.grade, row.homeroom) == ("الصف الرابع", "٤ب")
    page = await admin.page(f"/admin/wallets/{wallet}")
    assert "٤ب" in page and "الصف الرابع" in page
    listing = await admin.page("/admin/wallets?q=" + quote(school["wallets"][5]["display_name"]))
    assert wallet in listing and "٤ب" in listing  # the students list shows the homeroom
    for bad in ({"homeroom": "x" * 41}, {"homeroom": "4\u202eB"}):
        resp = await admin.post(f"/admin/wallets/{wallet}/settings", bad)
        assert flash(resp).startswith("err:"), bad
    resp = await admin.post(f"/admin/wallets/{wallet}/settings", {"homeroom": ""})
    assert flash(resp).startswith("ok:")
    assert (await query(db_url, sa.select(wallets.c.homeroom)
                        .where(wallets.c.wallet_id == wallet)))[0].homeroom is None


async def test_products_allergens_and_till_order(client: Any, demo: dict[str, Any],
                                                 db_url: str) -> None:
    school = demo["schools"][0]
    sid = school["school_id"]
    admin = await as_role(client, demo, "admin")

    async def order() -> list[str]:
        rows = await query(db_url, sa.select(products.c.product_id, products.c.position)
                           .where(products.c.school_id == sid)
                           .order_by(products.c.position))
        return [r.product_id for r in rows]

    start = await order()
    resp = await admin.post("/admin/products", {"name": "سمبوسة", "category": "Snacks",
                                                "price": "3.50", "allergens": "Wheat; milk"})
    assert flash(resp).startswith("ok:"), flash(resp)
    now = await order()
    assert now[:-1] == start  # nobody moved
    new = now[-1]
    row = (await query(db_url, sa.select(products).where(products.c.product_id == new)))[0]
    assert row.position == 11 and row.allergens == ["milk", "wheat"]

    page = await admin.page("/admin/products")
    page = page[page.index('id="products"'):]  # the table, not the "created" message
    names = [school["products"][0]["name"], school["products"][1]["name"], "سمبوسة"]
    assert page.index(names[0]) < page.index(names[1]) < page.index(names[2])
    assert "milk, wheat" in page and f"/admin/products/{new}/move" in page

    resp = await admin.post(f"/admin/products/{new}/move", {"direction": "up"})
    assert flash(resp).startswith("ok:"), flash(resp)
    assert (await order())[-2:] == [new, start[-1]]
    resp = await admin.post(f"/admin/products/{new}/move", {"position": "1"})
    assert (await order()) == [new, *start]
    resp = await admin.post(f"/admin/products/{new}/move", {"position": "5",
                                                            "direction": "down"})
    assert (await order()) == [start[0], new, *start[1:]]  # the arrow that was clicked
    resp = await admin.post(f"/admin/products/{new}/move", {"position": "1"})
    resp = await admin.post(f"/admin/products/{new}/move", {"direction": "up"})
    assert "Nothing moved" in flash(resp)
    for bad in ({"direction": "sideways"}, {"position": "0"}, {"position": "99"},
                {"position": "²"}, {}):
        resp = await admin.post(f"/admin/products/{new}/move", bad)
        assert flash(resp).startswith("err:Not moved"), (bad, flash(resp))
    assert (await order()) == [new, *start]

    resp = await admin.post(f"/admin/products/{new}", {"allergens": "sesame"})
    assert flash(resp).startswith("ok:")
    resp = await admin.post(f"/admin/products/{new}", {"allergens": "bad\x07"})
    assert flash(resp).startswith("err:Not saved: allergen")
    resp = await admin.post(f"/admin/products/{new}", {"allergens": "bad\x00"})
    assert resp.status == 400  # NUL in any form field: the request guard's plain 400
    assert (await query(db_url, sa.select(products.c.allergens)
                        .where(products.c.product_id == new)))[0].allergens == ["sesame"]
    assert "products_reordered" in await audit_actions(db_url, sid)


# ------------------------------------------------------------------ roster


async def upload(client: Any, admin: Session, blob: bytes) -> tuple[int, str]:
    form = aiohttp.FormData()
    form.add_field("csrf_token", admin.csrf)
    form.add_field("file", blob, filename="roster.csv", content_type="text/csv")
    resp = await client.post("/admin/roster", data=form)
    return resp.status, str(await resp.text())


ARABIC_ROSTER = ("student_number,name,grade,homeroom,blocked_categories,blocked_products,"
                 "allergens\n"
                 "AR-1,سارة العتيبي,الصف الثالث,٣أ,Snacks,,فول سوداني؛sesame\n"
                 "AR-2,عمر القحطاني,الصف الثالث,٣ب,,water 330ML,\n"
                 "AR-3,ليلى الحربي,الصف الرابع,٤أ,,,\n")


async def test_roster_utf8_with_bom_sets_names_homerooms_and_restrictions(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    admin = await as_role(client, demo, "admin")
    status, page = await upload(client, admin, b"\xef\xbb\xbf" + ARABIC_ROSTER.encode())
    assert status == 200, page
    assert "3 created" in page and "0 refused" in page and "File read as UTF-8" in page
    rows = {r.student_number: r for r in await query(db_url, sa.select(wallets).where(
        wallets.c.student_number.in_(["AR-1", "AR-2", "AR-3"])))}
    assert rows["AR-1"].display_name == "سارة العتيبي" and rows["AR-1"].homeroom == "٣أ"
    assert await active_rows(db_url, rows["AR-1"].wallet_id) == {
        ("category", "Snacks"), ("allergen", "فول سوداني"), ("allergen", "sesame")}
    water = school["products"][0]["product_id"]  # named case-insensitively in the file
    assert await active_rows(db_url, rows["AR-2"].wallet_id) == {("product", water)}
    assert await active_rows(db_url, rows["AR-3"].wallet_id) == set()

    # A re-import: a present column sets exactly its cell, an absent one leaves it alone.
    status, page = await upload(client, admin, (
        "student_number,name,allergens\n"
        "AR-1,سارة العتيبي,milk\n"
        "AR-2,عمر القحطاني,\n").encode())
    assert status == 200 and "1 updated, 1 unchanged" in page, page
    assert await active_rows(db_url, rows["AR-1"].wallet_id) == {
        ("category", "Snacks"), ("allergen", "milk")}
    assert await active_rows(db_url, rows["AR-2"].wallet_id) == {("product", water)}
    notes = [r.note for r in await query(db_url, sa.select(audit_log.c.note).where(
        audit_log.c.action == "wallet_restrictions_set"))]
    assert len(notes) == 3 and all(n.startswith("roster import, line") for n in notes)


async def test_roster_in_windows_1256_is_read_as_arabic(client: Any, demo: dict[str, Any],
                                                        db_url: str) -> None:
    admin = await as_role(client, demo, "admin")
    blob = ARABIC_ROSTER.replace("٣", "3").replace("٤", "4").encode("cp1256")
    try:
        blob.decode("utf-8")
        raise AssertionError("the cp1256 file must not be valid UTF-8 for this test")
    except UnicodeDecodeError:
        pass
    status, page = await upload(client, admin, blob)
    assert status == 200 and "3 created" in page, page
    assert "Windows-1256 (Arabic)" in page
    names = {r.display_name for r in await query(db_url, sa.select(wallets.c.display_name)
                                                 .where(wallets.c.student_number.like("AR-%")))}
    assert names == {"سارة العتيبي", "عمر القحطاني", "ليلى الحربي"}  # no mojibake


async def test_roster_in_other_encodings_is_refused_with_how_to_save(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    admin = await as_role(client, demo, "admin")
    count = sa.select(sa.func.count()).select_from(wallets)
    before = (await query(db_url, count))[0][0]
    latin = "student_number,name\nL-1,José Müller\nL-2,Zoë Ångström\n".encode("latin-1")
    russian = "student_number,name\nR-1,Иван Петров\n".encode("cp1251")
    utf16 = "student_number,name\nU-1,Sara\n".encode("utf-16")
    broken_bom = b"\xef\xbb\xbfstudent_number,name\nB-1,\xd3\xc7\xd1\xc9\n"
    for blob in (latin, russian, utf16, broken_bom):
        status, page = await upload(client, admin, blob)
        assert status == 400, page
        assert "Not imported" in page and "CSV UTF-8" in page
    assert (await query(db_url, count))[0][0] == before


async def test_roster_restriction_cells_are_checked_row_by_row(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school, other = demo["schools"]
    admin = await as_role(client, demo, "admin")
    status, page = await upload(client, admin, (
        "student_number,name,blocked_categories,blocked_products,allergens,homeroom\n"
        "Q-1,Ok Row,snacks,,,1A\n"
        "Q-2,Bad Category,Sweets,,,\n"
        f"Q-3,Foreign Product,,{other['products'][0]['product_id']},,\n"
        "Q-4,Bad Allergen,,,pea\x07nut,\n"
        f"Q-5,Long Homeroom,,,,{'x' * 41}\n").encode())
    assert status == 200, page
    page = html.unescape(page)
    assert "1 created" in page and "4 refused" in page
    for words in ("no category 'Sweets'", "no product", "invisible or control",
                  "homeroom 'xxxxxxxxxxxxxxxxxxxx'… is longer than 40"):
        assert words in page, words
    rows = await query(db_url, sa.select(wallets.c.wallet_id, wallets.c.student_number)
                       .where(wallets.c.student_number.like("Q-%")))
    assert [r.student_number for r in rows] == ["Q-1"]
    assert await active_rows(db_url, rows[0].wallet_id) == {("category", "Snacks")}
    assert school["school_id"]  # the rows went to the admin's own school
