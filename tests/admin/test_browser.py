"""The console in real headless Chromium (Debian's, driven by Playwright): the flows an office
admin goes through, with screenshots in test-artifacts/admin/ at desktop and phone widths.

One live server (SQLite) and one browser serve the whole module, to keep the suite fast.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import DatabaseFactory, LiveServer
from tests.server.helpers import sale

from .browser_support import (
    DESKTOP,
    PHONE,
    chromium,
    need_chromium,
    shot,
    sign_in,
)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("admin_browser")]  # one Chromium

need_chromium()


class Data:
    """A live server with two terminals' sales synced, including an overdraft."""

    def __init__(self, server: LiveServer) -> None:
        self.server, self.demo = server, server.demo
        self.school = self.demo["schools"][0]
        with httpx.Client(base_url=server.url, timeout=10) as http:
            def enroll(name: str) -> dict[str, Any]:
                resp = http.post("/api/v1/devices/enroll", json={
                    "enrollment_code": server.enrollment_code(), "name": name})
                assert resp.status_code == 201, resp.text
                return dict(resp.json())

            self.till1, self.till2 = enroll("Counter 1"), enroll("Counter 2")
            s = self.school
            self.plain = sale(s, 1, wallet=3, items=(0, 3))
            over = s["wallets"][4]
            self.overdraft = sale(s, 2, wallet=4, items=(5,),
                                  qty=over["balance"] // s["products"][5]["price"] + 1)
            for token, batch in ((self.till1["device_token"], [self.plain, self.overdraft]),
                                 (self.till2["device_token"],
                                  [sale(s, n, wallet=10 + n) for n in range(1, 6)])):
                resp = http.post("/api/v1/sync/sales", json={"sales": batch},
                                 headers={"Authorization": f"Bearer {token}"})
                assert resp.status_code == 200, resp.text


@pytest.fixture(scope="module")
def data(sqlite_factory: DatabaseFactory) -> Iterator[Data]:
    server = LiveServer(sqlite_factory.new(), json.loads(json.dumps(sqlite_factory.demo)))
    server.start()
    yield Data(server)
    server.stop()


@pytest.fixture(scope="module")
def browser(data: Data) -> Iterator[Any]:
    """Depends on ``data`` so the data is made before Playwright's loop owns this thread."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Any, data: Data) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    login(pg, data, data.school["admin"])
    yield pg
    context.close()


def login(pg: Any, data: Data, who: dict[str, str]) -> None:
    sign_in(pg, data.server.url, who)




def no_horizontal_overflow(pg: Any) -> None:
    """At phone width the page itself never scrolls sideways (wide tables scroll in a box)."""
    width = pg.evaluate("document.documentElement.scrollWidth")
    assert width <= pg.viewport_size["width"] + 1, width


def flash(pg: Any) -> str:
    return str(pg.locator(".flash").inner_text())


def test_login_page_and_dashboard(browser: Any, data: Data) -> None:
    context = browser.new_context(viewport=DESKTOP)
    pg = context.new_page()
    started = time.perf_counter()
    pg.goto(f"{data.server.url}/admin/")
    shot(pg, "01-login")
    shot(pg, "01-login", phone=True)
    pg.fill("input[name=email]", data.school["admin"]["email"])
    pg.fill("input[name=password]", "wrong")
    pg.click("button[type=submit]")
    assert "not accepted" in flash(pg)
    pg.fill("input[name=password]", data.school["admin"]["password"])
    pg.click("button[type=submit]")
    pg.wait_for_url("**/admin/")
    assert pg.locator("#today-count").inner_text() == "7"
    assert pg.locator(".chart svg rect.bar").count() == 24 + 14
    shot(pg, "02-dashboard")
    pg.set_viewport_size(PHONE)
    no_horizontal_overflow(pg)
    pg.set_viewport_size(DESKTOP)
    shot(pg, "02-dashboard", phone=True)
    print(f"login + dashboard in the browser: {time.perf_counter() - started:.2f} s")
    context.close()


def test_find_a_synced_sale_and_export_csv(page: Any, data: Data) -> None:
    student = data.school["wallets"][3]["display_name"]
    page.fill("input[name=student]", student)
    page.select_option("select[name=device]", label="Counter 1")
    page.click("form.filters button[type=submit]")
    rows = page.locator("#sales tr")
    assert rows.count() >= 2  # header + the sale
    assert student in page.locator("#sales").inner_text()
    shot(page, "03-sales-filtered")
    shot(page, "03-sales-filtered", phone=True)
    with page.expect_download() as info:
        page.click("#export-csv")
    # utf-8-sig: the export starts with a BOM so Excel reads Arabic names as UTF-8
    exported = list(csv.DictReader(open(info.value.path(), encoding="utf-8-sig")))
    assert data.plain["ref"] in {r["ref"] for r in exported}
    assert all(r["terminal"] == "Counter 1" for r in exported)
    page.click(f"a[href='/admin/sales/{data.plain['ref']}']")
    assert data.plain["ref"] in page.locator("h1").inner_text()
    assert page.locator("#postings tr").count() == 3  # header + wallet + revenue
    shot(page, "04-sale-detail")
    shot(page, "04-sale-detail", phone=True)


def test_import_roster_with_bad_rows(page: Any, data: Data, tmp_path: Path) -> None:
    other = data.demo["schools"][1]["school_id"]
    roster = tmp_path / "roster.csv"
    roster.write_text("student_number,name,grade,daily_limit,school_id\n"
                      "R-100,Huda S.,Grade 4,12.50,\n"
                      "R-101,,Grade 4,,\n"
                      "R-102,Omar Z.,Grade 5,abc,\n"
                      f"R-103,Not ours,Grade 1,,{other}\n"
                      "R-104,Yusuf B.,Grade 2,,\n", encoding="utf-8")
    page.goto(f"{data.server.url}/admin/roster")
    page.set_input_files("input[type=file]", str(roster))
    page.click("form[enctype] button[type=submit]")
    summary = page.locator("#import-summary").inner_text()
    assert "2 created" in summary and "3 refused" in summary
    report = page.locator("#import-report").inner_text()
    assert "name is empty" in report and "another school" in report
    assert "'abc' is not an amount" in report
    shot(page, "05-roster-report")
    shot(page, "05-roster-report", phone=True)


def test_block_and_replace_a_bracelet(page: Any, data: Data) -> None:
    wallet = data.school["wallets"][20]
    page.goto(f"{data.server.url}/admin/wallets/{wallet['wallet_id']}")
    page.fill("input[name=new_uid]", "04BEEF00000020")
    page.click("form[action$='/replace'] button")
    assert "blocked and" in flash(page)
    table = page.locator("#wallet-bracelets").inner_text()
    assert "04BEEF00000020" in table and wallet["credential_uid"] in table
    page.click("form[action='/admin/bracelets/04BEEF00000020/block'] button")
    assert "blocked" in flash(page)
    assert page.locator("form[action$='/block']").count() == 0  # nothing active is left
    shot(page, "06-wallet-bracelets")
    shot(page, "06-wallet-bracelets", phone=True)
    page.click(f"a[href='/admin/bracelets/{wallet['credential_uid']}']")
    assert "replaced by" in page.locator("#history").inner_text()
    shot(page, "07-bracelet-history")


def test_revoke_a_device(page: Any, data: Data) -> None:
    page.goto(f"{data.server.url}/admin/devices")
    device = data.till2["device_id"]
    page.fill(f"form[action='/admin/devices/{device}/revoke'] input[name=reason]", "stolen")
    page.click(f"form[action='/admin/devices/{device}/revoke'] button")
    assert "revoked" in flash(page)
    resp = httpx.get(f"{data.server.url}/api/v1/sync/snapshot",
                     headers={"Authorization": f"Bearer {data.till2['device_token']}"})
    assert resp.status_code == 403
    shot(page, "08-devices")
    shot(page, "08-devices", phone=True)


def test_reverse_an_overdraft_sale(page: Any, data: Data) -> None:
    page.goto(f"{data.server.url}/admin/exceptions")
    assert "overdraft" in page.locator("#flagged").inner_text()
    shot(page, "09-exceptions")
    shot(page, "09-exceptions", phone=True)
    page.click(f"#flagged a[href='/admin/sales/{data.overdraft['ref']}']")
    page.fill("#reverse-form textarea[name=reason]", "sold offline twice; parent refunded")
    page.click("#reverse-form button")
    assert "reversed" in flash(page)
    assert page.locator("#reverse-form").count() == 0
    assert page.locator("#postings tr").count() == 5  # sale and reversal, two postings each
    shot(page, "10-sale-reversed")
    wallet = data.school["wallets"][4]
    page.goto(f"{data.server.url}/admin/wallets/{wallet['wallet_id']}")
    shown = page.locator("#balance").inner_text().replace(",", "")
    assert shown == f"{wallet['balance'] / 100:.2f}"
    page.goto(f"{data.server.url}/admin/audit")
    assert page.locator("#audit td[data-code=sale_reversed]").count() >= 1
    assert "sale reversed" in page.locator("#audit").inner_text()  # in words, not the code
    shot(page, "11-audit")
    shot(page, "11-audit", phone=True)


def test_viewer_sees_no_buttons(browser: Any, data: Data) -> None:
    context = browser.new_context(viewport=PHONE)
    pg = context.new_page()
    login(pg, data, data.school["viewer"])
    pg.goto(f"{data.server.url}/admin/wallets/{data.school['wallets'][5]['wallet_id']}")
    assert pg.locator("main form[method=post]").count() == 0
    no_horizontal_overflow(pg)
    shot(pg, "12-viewer-wallet-phone")
    context.close()
