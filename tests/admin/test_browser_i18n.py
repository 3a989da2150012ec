"""Every console page in English and in Arabic, in Debian's Chromium through Playwright, checked
by axe-core (no serious or critical violation), for direction and language, for headings,
buttons and labels left in English on an Arabic page, and for cards touching tables.

One live server (SQLite, the demo plus synced sales and a gateway payment) and one browser
serve the module. Screenshots of the dashboard, sales and a student's page in both languages
go to test-artifacts/admin/i18n-*.png (the paths are printed).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from sync_server.api.webhooks import sign
from tests.conftest import WEBHOOK_SECRET, DatabaseFactory, LiveServer

from .browser_support import ARTIFACTS, DESKTOP, PHONE, chromium, need_chromium
from .test_browser import Data

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("admin_browser_i18n")]  # one Chromium
need_chromium()
axe_sync = pytest.importorskip("axe_playwright_python.sync_playwright",
                               reason="pip install axe-playwright-python (the dev extra)")

ARABIC = re.compile(r"[\u0600-\u06FF]")
# Text an Arabic page may show untranslated: codes, numbers, IDs, currency codes, names.
_SIGNS = r"[\s\d.,:;·/()\-–—%+#?…←→A-Z_]*"
NEUTRAL = re.compile(rf"^{_SIGNS}(UID|PIN|CSV|ID|SAR|seq)?{_SIGNS}$")
# Cards and tables are apart when the gap between them is at least this (CSS: 1rem = 15 px).
MIN_GAP_PX = 8


class World(Data):
    """The browser tests' data, plus one credited gateway payment and the IDs pages need."""

    def __init__(self, server: LiveServer) -> None:
        super().__init__(server)
        wallet = self.school["wallets"][6]
        raw = json.dumps({"event_id": "evt_i18n", "event_type": "payment.completed",
                          "reference": "pay_i18n", "wallet_id": wallet["wallet_id"],
                          "amount": 2500, "currency": "SAR",
                          "created_at": datetime.now(UTC).isoformat()}).encode()
        stamp = str(int(time.time()))
        resp = httpx.post(f"{server.url}/api/v1/webhooks/payments", content=raw, timeout=10,
                          headers={"Content-Type": "application/json", "X-Timestamp": stamp,
                                   "X-Signature": sign(WEBHOOK_SECRET, stamp, raw)})
        assert resp.status_code == 200, resp.text
        self.wallet = self.school["wallets"][3]


@pytest.fixture(scope="module")
def world(sqlite_factory: DatabaseFactory) -> Iterator[World]:
    server = LiveServer(sqlite_factory.new(), json.loads(json.dumps(sqlite_factory.demo)))
    server.start()
    yield World(server)
    server.stop()


@pytest.fixture(scope="module")
def browser(world: World) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def school_pages(w: World, pg: Any) -> dict[str, str]:
    """Every page a school admin opens (the router's GET pages), by name."""
    pg.goto(f"{w.server.url}/admin/payments")
    payment = pg.locator("#payments a[href^='/admin/payments/']").first.get_attribute("href")
    pg.goto(f"{w.server.url}/admin/users")
    user = pg.locator("#users a[href^='/admin/users/']").first.get_attribute("href")
    return {
        "dashboard": "/admin/", "sales": "/admin/sales",
        "sale": f"/admin/sales/{w.overdraft['ref']}", "exceptions": "/admin/exceptions",
        "wallets": "/admin/wallets", "wallet": f"/admin/wallets/{w.wallet['wallet_id']}",
        "bracelets": "/admin/bracelets",
        "bracelet": f"/admin/bracelets/{w.wallet['credential_uid']}",
        "bracelet_issue": "/admin/bracelets/issue",
        "bracelet_issue_class": "/admin/bracelets/issue?grade=Grade%201&homeroom=1A",
        "bracelet_stock": "/admin/bracelets/stock",
        "devices": "/admin/devices", "products": "/admin/products",
        "cashiers": "/admin/cashiers", "roster": "/admin/roster", "payments": "/admin/payments",
        "payment": str(payment), "settings": "/admin/settings", "audit": "/admin/audit",
        "users": "/admin/users", "user": str(user), "user_new": "/admin/users/new",
        "account_password": "/admin/account/password",
        "student_new": "/admin/wallets/new",
        "student_edit": f"/admin/wallets/{w.wallet['wallet_id']}/edit",
        "imports": "/admin/imports", "year_end": "/admin/year-end",
        "error": "/admin/no-such-page",
    }


def login(pg: Any, w: World, who: dict[str, str]) -> None:
    pg.goto(f"{w.server.url}/admin/login")
    pg.fill("input[name=email]", who["email"])
    pg.fill("input[name=password]", who["password"])
    pg.click("form[action='/admin/login'] button[type=submit]")
    pg.wait_for_url(re.compile(r".*/admin/(schools)?$"))


def serious_violations(pg: Any) -> list[str]:
    results = axe_sync.Axe().run(pg)
    return [f"{v['id']} ({v['impact']}): {v['help']} — "
            + "; ".join(n["target"][0] if isinstance(n["target"][0], str) else str(n["target"])
                        for n in v["nodes"][:3])
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


def touching_boxes(pg: Any) -> list[str]:
    """Cards and tables stacked one above the other with (almost) no gap between them."""
    return list(pg.evaluate("""(minGap) => {
      const pick = 'main .card, main .scroll, main > table, main .grid';
      const els = [...document.querySelectorAll(pick)];
      const out = [];
      for (const a of els) for (const b of els) {
        if (a === b || a.contains(b) || b.contains(a)) continue;
        const ra = a.getBoundingClientRect(), rb = b.getBoundingClientRect();
        if (!ra.height || !rb.height) continue;
        const overlapX = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
        const gap = rb.top - ra.bottom;
        if (overlapX > 20 && gap > -1 && gap < minGap)
          out.push(`${a.className || a.tagName} / ${b.className || b.tagName}: `
                   + `${gap.toFixed(1)}px`);
      }
      return out;
    }""", MIN_GAP_PX))


def english_left_over(pg: Any) -> list[str]:
    """Headings, column heads, buttons, labels and menu links of an Arabic page that hold
    Latin words and no Arabic: a string not wrapped or not translated."""
    texts = pg.evaluate("""() => {
      const pick = 'main h1, main h2, th, main button, nav.main a, main label, .pager a';
      return [...document.querySelectorAll(pick)].filter(e => !e.closest('.language-switch'))
        .map(e => {
          if (e.tagName === 'LABEL' || e.tagName === 'H1') {
            // the element's own words, not its field's value or the name or code it shows
            return [...e.childNodes].filter(n => n.nodeType === 3)
              .map(n => n.textContent).join(' ');
          }
          return e.innerText;
        }).map(t => t.trim()).filter(t => t);
    }""")
    return [t for t in texts if not ARABIC.search(t) and re.search("[a-z]{3,}", t)
            and not NEUTRAL.match(t)]


def check_page(pg: Any, name: str, lang: str, problems: list[str]) -> None:
    html = pg.locator("html")
    assert html.get_attribute("lang") == lang, (name, lang)
    assert html.get_attribute("dir") == ("rtl" if lang == "ar" else "ltr"), (name, lang)
    for v in serious_violations(pg):
        problems.append(f"{lang} {name}: {v}")
    for t in touching_boxes(pg):
        problems.append(f"{lang} {name}: boxes touch: {t}")
    if lang == "ar":
        for t in english_left_over(pg):
            problems.append(f"ar {name}: English left: {t!r}")
        brand = pg.locator("header.top .brand").bounding_box()
        assert brand and brand["x"] > DESKTOP["width"] / 2, (name, brand)  # mirrored header


def test_every_page_in_english_and_arabic_passes_axe(browser: Any, world: World) -> None:
    started = time.perf_counter()
    problems: list[str] = []
    shots: list[str] = []
    context = browser.new_context(viewport=DESKTOP, locale="en-US")
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    pg.goto(f"{world.server.url}/admin/login")
    check_page(pg, "login", "en", problems)
    login(pg, world, world.school["admin"])
    pages = school_pages(world, pg)
    for lang in ("en", "ar"):
        if lang == "ar":  # the switch on the page, saved for this admin
            pg.goto(f"{world.server.url}/admin/settings")
            with pg.expect_navigation():
                pg.click(".language-switch button[value=ar]")
            assert pg.url.endswith("/admin/settings")
        for name, path in pages.items():
            resp = pg.goto(world.server.url + path)
            assert resp is not None and resp.status == (404 if name == "error" else 200), \
                (lang, name, resp and resp.status)
            check_page(pg, name, lang, problems)
            if name in ("dashboard", "sales", "wallet"):
                shot = ARTIFACTS / f"i18n-{name}-{lang}.png"
                pg.screenshot(path=str(shot), full_page=True)
                shots.append(str(shot))
                pg.set_viewport_size(PHONE)  # mirrored, the page still never scrolls sideways
                width = pg.evaluate("document.documentElement.scrollWidth")
                if width > PHONE["width"] + 1:
                    problems.append(f"{lang} {name}: {width} px wide at phone width")
                pg.set_viewport_size(DESKTOP)
    with pg.expect_navigation():
        pg.click(".language-switch button[value=en]")  # leave the admin in English
    context.close()

    # The login page follows the browser's language (Accept-Language) and the platform
    # admin's school picker is a page of its own.
    context = browser.new_context(viewport=DESKTOP, locale="ar-SA")
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    pg.goto(f"{world.server.url}/admin/login")
    check_page(pg, "login", "ar", problems)
    with pg.expect_navigation():
        pg.click(".language-switch a[hreflang=en]")
    assert pg.locator("html").get_attribute("lang") == "en"
    login(pg, world, world.demo["platform_admin"])
    pg.goto(f"{world.server.url}/admin/schools")
    check_page(pg, "schools", "en", problems)
    pg.goto(f"{world.server.url}/admin/schools?lang=ar")
    check_page(pg, "schools", "ar", problems)
    context.close()
    print("screenshots:", *shots, sep="\n  ")
    print(f"{len(pages) * 2 + 3} page views with axe in {time.perf_counter() - started:.1f} s")
    assert not problems, "\n".join(problems)
