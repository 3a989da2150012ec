"""The console in Arabic and English: catalogs complete, the language each page is drawn in,
money and times by Babel, exports that stay machine-readable, and the console fixes of
issue 12 (enrollment codes kept, an empty chart, money in the audit log, the sale cap label).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import shutil
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, get_args
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

from shared.protocol import RejectCode, SaleFlag
from sync_server import i18n
from sync_server.admin import formatting, words
from sync_server.admin.charts import bar_chart
from sync_server.ledger.payments import HOLD_WORDS
from tests.server.helpers import enroll, push, sale

from .conftest import as_role

ROOT = Path(__file__).resolve().parents[2]
PO = i18n.TRANSLATIONS_DIR / "ar" / "LC_MESSAGES" / "messages.po"
ARABIC = re.compile(r"[\u0600-\u06FF]")


def arabic_catalog() -> Any:
    with PO.open("rb") as f:
        return read_po(f, locale="ar")


def extracted_ids() -> set[Any]:
    """What ``pybabel extract -F babel.cfg -k N_`` finds now, run in-process."""
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2),
                "npgettext": ((1, "c"), 2, 3), "N_": None}
    found: set[Any] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords):
        found.add(message)
    return found


# ------------------------------------------------------------------- catalogs


def test_arabic_catalog_has_no_untranslated_or_fuzzy_entry() -> None:
    catalog = arabic_catalog()
    untranslated = [m.id for m in catalog if m.id and (
        not all(m.string) if isinstance(m.id, tuple) else not m.string)]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not untranslated, f"untranslated in {PO.name}: {untranslated}"
    assert not fuzzy, f"fuzzy in {PO.name}: {fuzzy}"
    assert not catalog.fuzzy  # the header itself
    # Placeholders match (a wrong %(name)s would raise while drawing the page).
    problems = [(m.id, errors) for m, errors in catalog.check() if errors]
    assert not problems, problems
    assert sum(1 for m in catalog if m.id) > 300


def test_every_extracted_string_is_in_the_arabic_catalog() -> None:
    catalog_ids = {m.id for m in arabic_catalog() if m.id}
    missing = sorted(map(str, extracted_ids() - catalog_ids))
    assert not missing, ("strings in the code with no entry in the Arabic catalog (run the "
                         f"commands in docs/admin.md, Languages): {missing}")


def test_every_code_a_page_shows_has_words() -> None:
    """Flags and refusal codes (shared/protocol.py) and the ledger's hold reasons are shown as
    words in the reader's language, never as bare codes."""
    for code in (*get_args(SaleFlag), *get_args(RejectCode)):
        assert code in words.WORDS, code
    marked = set(words.HOLD_SENTENCES)
    for code, sentence in HOLD_WORDS.items():
        if code != "balance_out_of_bounds":  # the ledger's names its bounds in minor units
            assert sentence in marked, (code, sentence)
    with i18n.language("ar"):
        assert ARABIC.search(words.word("restricted_item"))
        assert all(ARABIC.search(t) for t in words.hold_words().values())
        assert words.word("some_new_code") == "some new code"


def test_a_missing_mo_is_compiled_from_the_po(tmp_path: Path, monkeypatch: Any,
                                               caplog: Any) -> None:
    folder = tmp_path / "ar" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    shutil.copy(PO, folder / "messages.po")
    monkeypatch.setattr(i18n, "TRANSLATIONS_DIR", tmp_path)
    i18n.translations.cache_clear()
    try:
        with caplog.at_level(logging.INFO, logger="sync_server.i18n"):
            with i18n.language("ar"):
                assert i18n._("Sign in") == "تسجيل الدخول"
        assert "compiled in memory" in caplog.text
        # Once built (pybabel compile), the .mo is what is read.
        from babel.messages.mofile import write_mo
        with (folder / "messages.po").open("rb") as f:
            catalog = read_po(f, locale="ar")
        with (folder / "messages.mo").open("wb") as f:
            write_mo(f, catalog)
        i18n.translations.cache_clear()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="sync_server.i18n"):
            with i18n.language("ar"):
                assert i18n._("Sign in") == "تسجيل الدخول"
        assert "compiled catalog" in caplog.text

        # pip may unpack the .po a moment after the .mo: the built catalog is still used...
        mo_time = (folder / "messages.mo").stat().st_mtime
        os.utime(folder / "messages.po", (mo_time + 2, mo_time + 2))
        i18n.translations.cache_clear()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="sync_server.i18n"):
            i18n.translations("ar")
        assert "compiled catalog" in caplog.text
        # ...but a .po edited well after the build is newer than its .mo: the .po wins.
        os.utime(folder / "messages.po", (mo_time + 600, mo_time + 600))
        i18n.translations.cache_clear()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="sync_server.i18n"):
            i18n.translations("ar")
        assert "compiled in memory" in caplog.text
    finally:
        i18n.translations.cache_clear()


def test_accept_language_picks_the_first_console_language() -> None:
    assert i18n.pick_language("ar-SA,ar;q=0.9,en;q=0.8") == "ar"
    assert i18n.pick_language("fr-FR, en;q=0.5, ar;q=0.7") == "ar"
    assert i18n.pick_language("fr, de") == "en"
    assert i18n.pick_language("ar;q=0, en") == "en"
    assert i18n.pick_language(None) == "en"
    assert i18n.pick_language("ar;q=abc, en;q=0.1") == "en"


# ------------------------------------------------------------------- formatting


def test_money_and_times_by_locale_with_western_digits() -> None:
    assert formatting.money(-123450, "SAR", "en") == "-SAR\u00a01,234.50"
    ar = formatting.money(123450, "SAR", "ar")
    assert "1,234.50" in ar and "ر.س" in ar
    assert not re.search("[٠-٩]", ar)  # Western digits in Arabic too (formatting.py)
    assert formatting.money(5, "KWD", "en") == "KWD\u00a00.005"  # three decimals
    assert formatting.money(None, "SAR", "en") == "—"
    assert formatting.major(-123405, "SAR") == "-1234.05"
    moment = datetime(2026, 11, 27, 8, 5, 9, tzinfo=UTC)  # 11:05:09 in Riyadh
    assert formatting.when(moment, "Asia/Riyadh", lang="en") == "Nov 27, 2026, 11:05:09"
    ar_when = formatting.when(moment, "Asia/Riyadh", lang="ar")
    assert "11:05:09" in ar_when and "نوفمبر" in ar_when
    assert formatting.when(moment, "Asia/Riyadh", "short", lang="en") == "Nov 27, 11:05"
    assert formatting.day(date(2026, 11, 27), "full", lang="ar").startswith("الجمعة")


def test_remembered_times_and_amounts_read_as_babel_writes_them() -> None:
    """formatting.when and .amount remember what they wrote (a statement formats a time and
    two amounts per row); what they give equals Babel's own formatting of the moment in its
    zone, across a daylight-saving change, midnight and both languages."""
    start = datetime(2026, 3, 28, 20, 0, 7, tzinfo=UTC)  # London moves to BST on the 29th
    for step in range(0, 40 * 3600, 1789):
        moment = start + timedelta(seconds=step)
        for tz in ("Asia/Riyadh", "Europe/London", "America/St_Johns"):
            for lang in ("en", "ar"):
                zone = ZoneInfo(tz)
                for short, skeletons in ((False, ("yMMMd", "Hms")), (True, ("MMMd", "Hm"))):
                    day = format_skeleton(skeletons[0], moment, tzinfo=zone, locale=lang)
                    clock = format_skeleton(skeletons[1], moment, tzinfo=zone, locale=lang)
                    expected = str(i18n.babel_locale(lang).datetime_formats["medium"]).replace(
                        "{1}", day).replace("{0}", clock)
                    got = formatting.when(moment, tz, "short" if short else "full", lang=lang)
                    assert got == expected, (moment, tz, lang, short)
    for minor in (0, 5, -5, 123450, -123405, 10**12):
        for currency, exp in (("SAR", 2), ("KWD", 3), ("JPY", 0)):
            for lang in ("en", "ar"):
                expected = format_decimal(Decimal(minor).scaleb(-exp),
                                          format="#,##0" + ("." + "0" * exp if exp else ""),
                                          locale=lang, decimal_quantization=False,
                                          numbering_system="latn")
                assert formatting.amount(minor, currency, lang) == expected
                assert formatting.amount(minor, currency, lang) == expected  # remembered


def test_an_empty_chart_reads_zero_once_and_says_so() -> None:
    svg = str(bar_chart([("08", 0), ("09", 0)], title="t",
                        fmt=lambda v: formatting.amount(v, "SAR", "en"), empty="No sales yet"))
    labels = re.findall(r'text-anchor="end">([^<]*)<', svg)
    assert labels == ["0"]
    assert "No sales yet" in svg and svg.count('class="axis"') == 1
    full = str(bar_chart([("08", 1250), ("09", 0)], title="t",
                         fmt=lambda v: formatting.amount(v, "SAR", "en")))
    assert re.findall(r'text-anchor="end">([^<]*)<', full) == ["0.00", "10.00", "20.00"]


# ------------------------------------------------------------------- pages


async def test_pages_follow_accept_language_then_the_saved_choice(client: Any,
                                                                  demo: dict[str, Any]) -> None:
    login = await client.get("/admin/login", headers={"Accept-Language": "ar-SA,ar;q=0.9"})
    body = await login.text()
    assert '<html lang="ar" dir="rtl">' in body and "تسجيل الدخول" in body
    english = await (await client.get("/admin/login?lang=en",
                                      headers={"Accept-Language": "ar"})).text()
    assert '<html lang="en" dir="ltr">' in english and "Sign in" in english

    admin = await as_role(client, demo, "admin")  # the cookie from ?lang=en is English
    page = await admin.page("/admin/")
    assert '<html lang="en" dir="ltr">' in page
    # The choice is saved for the user and survives a browser that asks for English.
    switched = await admin.post("/admin/language", {"lang": "ar", "next": "/admin/wallets"})
    assert switched.status == 303 and switched.headers["Location"] == "/admin/wallets"
    client.session.cookie_jar.clear_domain("127.0.0.1")  # no language cookie, no session
    admin = await as_role(client, demo, "admin")
    for path in ("/admin/", "/admin/sales", "/admin/wallets", "/admin/settings",
                 "/admin/devices", "/admin/audit"):
        html = await admin.get(path, headers={"Accept-Language": "en"})
        text = await html.text()
        assert '<html lang="ar" dir="rtl">' in text, path
        assert "لوحة المتابعة" in text, path  # the menu, in Arabic
    refused = await admin.post("/admin/language", {"lang": "xx"})
    assert refused.status == 303
    assert '<html lang="ar"' in await admin.page("/admin/")
    viewer = await as_role(client, demo, "viewer")  # a read-only user may choose too
    assert (await viewer.post("/admin/language", {"lang": "ar"})).status == 303
    no_csrf = await viewer.post("/admin/language", {"lang": "en"}, csrf=False)
    assert no_csrf.status == 403


async def test_arabic_pages_format_money_and_exports_stay_machine_readable(
        client: Any, demo: dict[str, Any]) -> None:
    school = demo["schools"][0]
    device = await enroll(client, school["enrollment_code"])
    pushed = await push(client, device["device_token"], [sale(school, 1, wallet=2)])
    assert pushed["results"][0]["status"] == "applied"
    admin = await as_role(client, demo, "admin")
    assert (await admin.post("/admin/language", {"lang": "ar"})).status == 303
    page = await admin.page("/admin/sales")
    assert 'dir="rtl"' in page and "المبيعات المتزامنة" in page
    resp = await admin.get("/admin/sales.csv")
    assert resp.status == 200
    text = (await resp.read()).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows
    for r in rows:
        assert re.fullmatch(r"-?\d+(\.\d+)?", r["total"]), r["total"]
        assert re.fullmatch(r"-?\d+(\.\d+)?", r["balance_after"]), r["balance_after"]
        assert datetime.fromisoformat(r["received_at"]).tzinfo is not None
        assert r["status"] in ("applied", "rejected")  # codes, not the Arabic words
    assert not re.search("[٠-٩]", text)


async def test_enrollment_codes_stay_listed_after_creating_one(client: Any,
                                                               demo: dict[str, Any]) -> None:
    admin = await as_role(client, demo, "admin")
    resp = await admin.post("/admin/devices/enrollment-codes")
    assert resp.status == 200
    page = await resp.text()
    assert 'id="enrollment-code"' in page
    assert 'id="enrollment-codes"' in page  # the list of codes did not vanish
    listed = page.split('id="enrollment-codes"')[1].split("</table>")[0]
    assert listed.count("<tr>") >= 2  # header + the new code (+ the demo's)
    assert "It expires at" in page
    again = await admin.page("/admin/devices")
    assert 'id="enrollment-codes"' in again and 'id="enrollment-code"' not in again


async def test_audit_log_and_settings_show_money_not_minor_units(
        client: Any, demo: dict[str, Any]) -> None:
    admin = await as_role(client, demo, "admin")
    settings = await admin.page("/admin/settings")
    assert "Largest single sale" in settings and "Offline cap per sale" not in settings
    assert "Applies online and offline" in settings
    saved = await admin.post("/admin/settings", {
        "offline_max_sale": "25.00", "offline_max_unsynced_total": "1500.00",
        "offline_max_hours": "24", "overdraft_limit": "5"})
    assert saved.status == 303
    audit = await admin.page("/admin/audit?action=settings_updated")
    table = audit.split('id="audit"')[1]
    assert "SAR\u00a025.00" in table and "SAR\u00a01,500.00" in table
    assert ">2500<" not in table and " 2500<" not in table and "150000" not in table
    assert "largest single sale" in table  # the field's words, not offline_max_sale


async def test_messages_after_an_action_are_in_the_admins_language(
        client: Any, demo: dict[str, Any]) -> None:
    admin = await as_role(client, demo, "admin")
    assert (await admin.post("/admin/language", {"lang": "ar"})).status == 303
    page = await admin.page("/admin/settings")
    form = {name: re.search(rf'name="{name}"[^>]*value="([^"]*)"', page).group(1)
            for name in ("offline_max_sale", "offline_max_unsynced_total",
                         "offline_max_hours", "overdraft_limit")}
    assert form["offline_max_sale"] == "50.00"  # a plain dot decimal in the field, any language
    same = await admin.post("/admin/settings", form)  # nothing changed
    assert same.status == 303
    shown = await admin.page("/admin/settings")
    assert "لم يتغير شيء." in shown  # the one-shot message, through the cookie, in Arabic
    bad = await admin.post("/admin/settings", {**form, "offline_max_hours": "0"})
    assert bad.status == 303
    assert "لم يُحفَظ" in await admin.page("/admin/settings")
