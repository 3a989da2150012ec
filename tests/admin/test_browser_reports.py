"""The report pages in real headless Chromium: each loads for an admin, each date preset shows
its period, the PDF links give PDFs that poppler renders and that hold the page's figures, each
CSV export sums to its page's totals row, and the Arabic pages are right to left with no
serious or critical axe-core violation.

One live server (SQLite) and one browser serve the module. The data: today's sales from two
tills with a void, a gateway payment and a console top-up (``World`` of the i18n browser test,
plus a void and a top-up here).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from shared.ids import new_ref
from tests.conftest import DatabaseFactory, LiveServer
from tests.server.helpers import void_of

from .browser_support import ARTIFACTS, DESKTOP, chromium, need_chromium
from .conftest import csrf_of
from .test_browser_i18n import World, check_page, login, serious_violations

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("admin_browser_reports")]
need_chromium()
if not (shutil.which("pdftoppm") and shutil.which("pdftotext")):
    pytest.skip("the PDF checks need poppler's pdftoppm and pdftotext: apt-get install "
                "poppler-utils (packaging/dev installs it)", allow_module_level=True)

# The report pages of sync_server/admin/reports.py; the period pages have preset links.
REPORT_PAGES = {"index": "/admin/reports", "z": "/admin/reports/z",
                "sales": "/admin/reports/sales", "money": "/admin/reports/money",
                "balances": "/admin/reports/balances", "negatives": "/admin/reports/negatives"}
PERIOD_PAGES = ("sales", "money")
WEEK_START = 6  # Sunday, the Saudi school week's first day


class Reports(World):
    """The i18n browser test's world, plus a void on till 2 and a top-up in the console."""

    def __init__(self, server: LiveServer) -> None:
        super().__init__(server)
        self.tz = ZoneInfo("Asia/Riyadh")
        with httpx.Client(base_url=server.url, timeout=10) as http:
            # The first of till 1's sales is voided at the till (seq 3 of that till).
            resp = http.post("/api/v1/sync/sales", json={"sales": [void_of(self.plain, 3)]},
                             headers={"Authorization": f"Bearer {self.till1['device_token']}"})
            assert resp.status_code == 200 and resp.json()["results"][0]["status"] == (
                "applied"), resp.text
            admin = self.school["admin"]
            token = csrf_of(http.get("/admin/login").text)
            resp = http.post("/admin/login", data={"email": admin["email"],
                                                   "password": admin["password"],
                                                   "csrf_token": token, "next": ""})
            assert resp.status_code == 303, resp.text
            page = http.get(f"/admin/wallets/{self.wallet['wallet_id']}")
            resp = http.post(f"/admin/wallets/{self.wallet['wallet_id']}/money", data={
                "kind": "topup", "amount": "20.00", "reason": "cash at the office",
                "idem_key": new_ref(), "csrf_token": csrf_of(page.text)})
            assert resp.status_code == 303, resp.text


@pytest.fixture(scope="module")
def world(sqlite_factory: DatabaseFactory) -> Iterator[Reports]:
    server = LiveServer(sqlite_factory.new(), json.loads(json.dumps(sqlite_factory.demo)))
    server.start()
    yield Reports(server)
    server.stop()


@pytest.fixture(scope="module")
def browser(world: Reports) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Any, world: Reports) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP, locale="en-US", accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    login(pg, world, world.school["admin"])
    yield pg
    context.close()


def expected_period(preset: str, today: date) -> tuple[date, date]:
    """What each preset covers, worked out here from the calendar."""
    if preset == "today":
        return today, today
    if preset == "yesterday":
        return today - timedelta(days=1), today - timedelta(days=1)
    if preset == "this_week":
        return today - timedelta(days=(today.weekday() - WEEK_START) % 7), today
    if preset == "this_month":
        return today.replace(day=1), today
    assert preset == "last_month"
    end = today.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


def minor(text: str) -> int:
    """``-1,234.50`` (a CSV cell or a page's cell, two decimals) -> minor units."""
    return int(Decimal(text.replace(",", "")).scaleb(2))


def download(pg: Any, selector: str) -> Path:
    with pg.expect_download() as info:
        pg.click(selector)
    return Path(info.value.path())


def open_pdf(pg: Any, selector: str, tmp_path: Path) -> Path:
    """Click a PDF link: the browser opens it in its viewer (the links are ``inline`` so a
    person can print straight away). The viewer hands Playwright its own page as the body,
    so the same address is fetched again with the page's cookies for poppler."""
    href = str(pg.locator(selector).get_attribute("href"))
    with pg.expect_response(lambda r: href.split("?")[0] in r.url) as info:
        pg.click(selector)
    resp = info.value
    assert resp.status == 200 and resp.headers["content-type"] == "application/pdf", resp
    assert resp.headers["content-disposition"].startswith("inline; filename=")
    again = pg.request.get(resp.url)
    assert again.status == 200
    body = again.body()
    assert body.startswith(b"%PDF-")
    path = tmp_path / (href.split("/")[-1].split("?")[0])
    path.write_bytes(body)
    return path


def pdf_words(pdf: Path, tmp_path: Path) -> str:
    """pdftoppm renders page 1 (exit 0, a PNG with something on it); pdftotext reads it."""
    prefix = tmp_path / pdf.stem
    done = subprocess.run(["pdftoppm", "-r", "50", "-f", "1", "-l", "1", "-png", str(pdf),
                           str(prefix)], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    png = next(tmp_path.glob(pdf.stem + "*.png"))
    assert png.stat().st_size > 2000, png.stat().st_size  # a blank page is a few hundred bytes
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True, timeout=60).stdout


def test_each_report_page_loads_and_each_preset_shows_its_period(page: Any,
                                                                 world: Reports) -> None:
    for name, path in REPORT_PAGES.items():
        resp = page.goto(world.server.url + path)
        assert resp is not None and resp.status == 200, (name, resp and resp.status)
        assert page.locator("main h1").inner_text().strip(), name
    today = datetime.now(UTC).astimezone(world.tz).date()
    for name in PERIOD_PAGES:
        page.goto(world.server.url + REPORT_PAGES[name])
        presets = [str(a.get_attribute("data-preset"))
                   for a in page.locator("#period a[data-preset]").all()]
        assert presets == ["today", "yesterday", "this_week", "this_month", "last_month"]
        for preset in presets:
            with page.expect_navigation():
                page.click(f"#period a[data-preset={preset}]")
            assert f"period={preset}" in page.url, (name, preset, page.url)
            shown = page.locator("#period-shown")
            first, last = expected_period(preset, today)
            assert (shown.get_attribute("data-first"), shown.get_attribute("data-last")) == (
                first.isoformat(), last.isoformat()), (name, preset)
            assert page.locator(f"#period a[data-preset={preset}]").get_attribute(
                "aria-current") == "true"
            # The dates themselves are on the page in words, not only in attributes.
            assert str(first.year) in shown.inner_text()
    # The index page's preset links lead to the same periods.
    page.goto(world.server.url + "/admin/reports")
    with page.expect_navigation():
        page.click("#report-money .presets a >> nth=3")  # this month
    assert page.locator("#period-shown").get_attribute("data-first") == (
        today.replace(day=1).isoformat())


def test_pdf_links_give_pdfs_with_the_pages_figures(page: Any, world: Reports,
                                                    tmp_path: Path) -> None:
    page.goto(world.server.url + "/admin/reports/z")
    net = page.locator("#z-totals td.net").inner_text().strip()
    assert minor(net) > 0
    pdf = open_pdf(page, "#export-pdf", tmp_path)
    words = pdf_words(pdf, tmp_path)
    assert net in words and "Counter 1" in words and "Counter 2" in words

    wallet = world.wallet["wallet_id"]
    page.goto(f"{world.server.url}/admin/wallets/{wallet}")
    with page.expect_navigation():
        page.click("#statement-link")
    assert page.url.endswith(f"/admin/wallets/{wallet}/statement")
    closing = page.locator("#closing").inner_text().strip()
    assert "cash at the office" in page.locator("#movements").inner_text()
    pdf = open_pdf(page, "#statement-pdf", tmp_path)
    words = pdf_words(pdf, tmp_path)
    assert closing in words and "cash at the office" in words
    page.go_back()
    # The month links move the statement and its PDF link along.
    with page.expect_navigation():
        page.click("#previous-month")
    previous = (datetime.now(UTC).astimezone(world.tz).date().replace(day=1)
                - timedelta(days=1)).strftime("%Y-%m")
    assert page.url.endswith(f"?month={previous}")
    assert page.locator("#statement-pdf").get_attribute("href").endswith(f"month={previous}")


def test_csv_exports_sum_to_the_pages_totals(page: Any, world: Reports) -> None:
    # Z report: the terminal rows add up to the school row and to the page's totals row.
    page.goto(world.server.url + "/admin/reports/z")
    page_net = minor(page.locator("#z-totals td.net").inner_text())
    page_sales = int(str(page.locator("#z-totals td[data-minor]").first
                         .get_attribute("data-minor")))
    rows = list(csv.DictReader(open(download(page, "#export-csv"), encoding="utf-8-sig")))
    terminals = [r for r in rows if r["section"] == "terminal"]
    school_row = next(r for r in rows if r["section"] == "school")
    assert sum(minor(r["net"]) for r in terminals) == minor(school_row["net"]) == page_net
    assert sum(minor(r["sales_amount"]) for r in terminals) == page_sales
    assert all(minor(r["sales_amount"]) + minor(r["voids_amount"])
               + minor(r["reversals_amount"]) == minor(r["net"]) for r in rows)
    assert page_net > 0 and any(minor(r["voids_amount"]) < 0 for r in terminals)

    for path, totals in (("/admin/reports/sales?period=this_month", "#breakdown-totals"),
                         ("/admin/reports/money?period=this_month", "#money-totals"),
                         ("/admin/reports/balances", "#balances-totals")):
        page.goto(world.server.url + path)
        total = int(str(page.locator(f"{totals} td[data-minor]").last
                        .get_attribute("data-minor")))
        column = {"sales": "amount", "money": "amount", "balances": "balance"}[
            path.split("/")[3].split("?")[0]]
        rows = list(csv.DictReader(open(download(page, "#export-csv"), encoding="utf-8-sig")))
        assert rows, path
        assert sum(minor(r[column]) for r in rows) == total, path


def test_arabic_report_pages_are_right_to_left_and_pass_axe(page: Any, world: Reports) -> None:
    problems: list[str] = []
    statement = f"/admin/wallets/{world.wallet['wallet_id']}/statement"
    for lang in ("en", "ar"):
        if lang == "ar":
            with page.expect_navigation():
                page.click(".language-switch button[value=ar]")
        for name, path in {**REPORT_PAGES, "statement": statement}.items():
            resp = page.goto(world.server.url + path)
            assert resp is not None and resp.status == 200, (lang, name)
            html = page.locator("html")
            assert html.get_attribute("lang") == lang
            assert html.get_attribute("dir") == ("rtl" if lang == "ar" else "ltr"), name
            if name == "statement":  # this module's own page: every check of the i18n test
                check_page(page, name, lang, problems)
            else:
                problems += [f"{lang} {name}: {v}" for v in serious_violations(page)]
            if lang == "ar" and name in ("z", "statement"):
                page.screenshot(path=str(ARTIFACTS / f"report-{name}-ar.png"), full_page=True)
        if lang == "ar":
            assert re.search("[\u0600-\u06ff]", page.locator("main h1").inner_text())
    with page.expect_navigation():
        page.click(".language-switch button[value=en]")  # leave the admin in English
    assert not problems, "\n".join(problems)
