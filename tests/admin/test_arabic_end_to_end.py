"""Arabic names end to end, on SQLite and PostgreSQL, with every part real.

A roster saved by Excel in Arabic Windows (Windows-1256) and another saved as "CSV UTF-8" (with
a BOM) go in through the console (logged-in admin, CSRF); products with Arabic names and
allergens are created there. A real terminal core enrolls against the server on a real port,
pulls the snapshot, refuses a restricted item offline, sells Arabic-named products, and pushes;
a restriction set after its snapshot is flagged ``restricted_item`` on the server. The console's
wallet page, sales list, exceptions queue and CSV export then show the same names, and the CSV
opens in Excel (UTF-8 BOM) with machine-readable numbers.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest
import sqlalchemy as sa

from sync_server.storage.schema import products, wallets
from terminal.core import Terminal
from terminal.errors import SaleRefused
from tests.conftest import DatabaseFactory, LiveServer
from tests.server.conftest_helpers import new_code

from .conftest import Session, login, query

JUICE, CAKE, DRINKS = "عصير برتقال طازج", "كعكة الفول السوداني", "مشروبات"
SARA, OMAR, LAYLA = "سارة العتيبي", "عمر القحطاني", "ليلى الحربي"
PEANUT = "فول سوداني"
UIDS = {"AR-1": "04A1B2C3D4E501", "AR-2": "04A1B2C3D4E502", "AR-3": "04A1B2C3D4E503"}


@pytest.fixture
def server(db_factory: DatabaseFactory) -> Iterator[LiveServer]:
    live = LiveServer(db_factory.new(), json.loads(json.dumps(db_factory.demo)))
    live.start()
    yield live
    live.stop()


def ok(resp: Any) -> None:
    message = unquote(resp.cookies["pos_flash"].value) if "pos_flash" in resp.cookies else ""
    assert resp.status == 303 and message.startswith("ok:"), (resp.status, message)


async def upload(http: aiohttp.ClientSession, admin: Session, blob: bytes) -> str:
    form = aiohttp.FormData()
    form.add_field("csrf_token", admin.csrf)
    form.add_field("file", blob, filename="roster.csv", content_type="text/csv")
    resp = await http.post("/admin/roster", data=form)
    page = await resp.text()
    assert resp.status == 200, page
    return html.unescape(page)


async def test_arabic_roster_to_till_to_sales_list_and_csv(server: LiveServer,
                                                           tmp_path: Path) -> None:
    school = server.demo["schools"][0]
    cashier = school["cashiers"][0]["cashier_id"]
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
    async with aiohttp.ClientSession(base_url=server.url, cookie_jar=jar) as http:
        admin = await login(http, school["admin"]["email"], school["admin"]["password"])

        # Console: two Arabic products, one with an Arabic allergen.
        ok(await admin.post("/admin/products", {"name": JUICE, "category": DRINKS,
                                                "price": "4.00"}))
        ok(await admin.post("/admin/products", {"name": CAKE, "category": "حلويات",
                                                "price": "5.50", "allergens": PEANUT}))
        ids = {r.name: r.product_id for r in await query(server.db_url, sa.select(
            products.c.name, products.c.product_id).where(products.c.name.in_([JUICE, CAKE])))}

        # Roster: Arabic Windows, then CSV UTF-8 with a BOM.
        cp1256 = ("student_number,name,grade,homeroom,allergens\r\n"
                  f"AR-1,{SARA},الصف الثالث,3أ,{PEANUT}\r\n"
                  f"AR-2,{OMAR},الصف الثالث,3ب,\r\n").encode("cp1256")
        page = await upload(http, admin, cp1256)
        assert "2 created" in page and "Windows-1256 (Arabic)" in page, page
        page = await upload(http, admin, b"\xef\xbb\xbf" + (
            "student_number,name,grade,homeroom\r\n"
            f"AR-3,{LAYLA},الصف الرابع,٤أ\r\n").encode())
        assert "1 created" in page and "read as UTF-8" in page, page
        wallet = {r.student_number: r.wallet_id for r in await query(server.db_url, sa.select(
            wallets.c.student_number, wallets.c.wallet_id)
            .where(wallets.c.student_number.in_(list(UIDS))))}
        for number, uid in UIDS.items():
            ok(await admin.post("/admin/bracelets/assign",
                                {"wallet_id": wallet[number], "uid": uid}))
            ok(await admin.post(f"/admin/wallets/{wallet[number]}/money", {
                "kind": "topup", "amount": "50.00", "reason": "نقدًا في مكتب المدرسة"}))
        page = html.unescape(await admin.page(f"/admin/wallets/{wallet['AR-1']}"))
        assert SARA in page and PEANUT in page and "3أ" in page

        # The till: enroll, pull, and the Arabic names, homeroom and restriction are there.
        term = Terminal(tmp_path / "till")
        code = await new_code(server.db_url, school["school_id"])
        enrolled = term.enroll(server.url, code, "الكاونتر ١")
        assert enrolled.first_snapshot.completed, enrolled.first_snapshot.error
        sara = term.wallet_for_uid(UIDS["AR-1"])
        assert sara is not None and sara.display_name == SARA
        view = term.wallet_view(wallet["AR-1"])
        assert view is not None and view.homeroom == "3أ"
        assert view.restrictions.allergens == (PEANUT,)
        catalog = {p.product_id: p for p in term.products()}
        assert catalog[ids[CAKE]].name == CAKE and catalog[ids[CAKE]].allergens == (PEANUT,)
        assert catalog[ids[JUICE]].position == 11 and catalog[ids[CAKE]].position == 12

        # Offline rule on the till: Sara may not have the peanut cake.
        with pytest.raises(SaleRefused) as refused:
            term.record_sale(cashier, [(ids[CAKE], 1)], uid=UIDS["AR-1"])
        assert refused.value.code == "restricted_item" and CAKE in refused.value.message

        sold_sara = term.record_sale(cashier, [(ids[JUICE], 2)], uid=UIDS["AR-1"])
        sold_layla = term.record_sale(cashier, [(ids[CAKE], 1)], uid=UIDS["AR-3"])
        # Drinks are blocked for Omar after the till's snapshot: the till cannot know, sells,
        # and the server flags the sale when it arrives.
        ok(await admin.post(f"/admin/wallets/{wallet['AR-2']}/restrictions",
                            {"category": DRINKS}))
        sold_omar = term.record_sale(cashier, [(ids[JUICE], 1)], uid=UIDS["AR-2"])
        report = term.sync_once()
        assert report.completed and report.counts["applied"] == 3, report
        assert term.item_refusal(ids[JUICE], uid=UIDS["AR-2"]) is not None  # known now

        # Console: the sales list, the exceptions queue and the CSV export.
        listing = html.unescape(await admin.page("/admin/sales"))
        for text in (SARA, OMAR, LAYLA, JUICE, CAKE):
            assert text in listing, text
        page = await admin.page("/admin/exceptions")
        assert sold_omar.ref in page and sold_sara.ref not in page
        queue = html.unescape(re.sub(r"<[^>]+>", "", page))  # the text a reader sees
        assert f"{JUICE}: category blocked for the student: {DRINKS}" in queue

        resp = await admin.get("/admin/sales.csv")
        raw = await resp.read()
        assert resp.status == 200 and raw.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8
        rows = {r["ref"]: r for r in csv.DictReader(io.StringIO(raw.decode("utf-8-sig")))}
        assert rows[sold_sara.ref]["student"] == SARA
        assert rows[sold_sara.ref]["items"] == f"2 x {JUICE}"
        assert Decimal(rows[sold_sara.ref]["total"]) == Decimal("8.00")  # a plain number
        assert Decimal(rows[sold_sara.ref]["balance_after"]) == Decimal("42.00")
        assert rows[sold_layla.ref]["student"] == LAYLA
        assert rows[sold_layla.ref]["items"] == f"1 x {CAKE}"
        assert rows[sold_omar.ref]["flags"] == "restricted_item"
        assert rows[sold_omar.ref]["terminal"] == "الكاونتر ١"
