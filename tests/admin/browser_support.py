"""What every browser test of the console shares: Debian's Chromium driven by Playwright, a
live server (SQLite) with the demo data, signing in through the real form, screenshots.

The browser test modules each run one server and one browser for the whole module (see
tests/admin/test_browser.py); this module holds the set-up so a new module does not copy it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DatabaseFactory, LiveServer

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "admin"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def need_chromium() -> Any:
    """Skip the calling module when Chromium or Playwright is missing; Playwright's sync API."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} "
                    "(apt-get install chromium)", allow_module_level=True)
    return pytest.importorskip("playwright.sync_api", reason="pip install playwright")


def live_server(factory: DatabaseFactory) -> LiveServer:
    """A started live server on a fresh copy of the demo database (the caller stops it)."""
    server = LiveServer(factory.new(), json.loads(json.dumps(factory.demo)))
    server.start()
    return server


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium; make the server's data before entering (Playwright's loop then
    owns the thread)."""
    sync_api = need_chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(pg: Any, base_url: str, who: dict[str, str], landing: str = "/admin/sales") -> None:
    """Through the real login form, arriving at ``landing``."""
    pg.goto(f"{base_url}{landing}")
    assert "/admin/login" in pg.url  # no session: sent to the login page
    pg.fill("input[name=email]", who["email"])
    pg.fill("input[name=password]", who["password"])
    pg.click("button[type=submit]")
    pg.wait_for_url(f"**{landing}")


def shot(pg: Any, name: str, *, phone: bool = False) -> Path:
    """A full-page screenshot in test-artifacts/admin/ (at phone width when asked)."""
    if phone:
        pg.set_viewport_size(PHONE)
    path = ARTIFACTS / f"{name}{'-phone' if phone else ''}.png"
    pg.screenshot(path=str(path), full_page=True)
    if phone:
        pg.set_viewport_size(DESKTOP)
    return path
