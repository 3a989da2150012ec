"""Z report and monthly statement PDFs, in English and Arabic, on SQLite and PostgreSQL.

The money comes in through the real device API and the ledger (sales, a void, a console
top-up and adjustment; last month's sales through the ledger's own push with a past receipt
time, as the demo history does). The PDFs are read back with poppler: ``pdfinfo`` counts the
pages, ``pdftoppm`` renders page 1, ``pdftotext`` gives the words, which must hold the
figures as the console formats them and, in Arabic, the Arabic words in reading order.

What poppler returns for right-to-left text: the words in logical order, wrapped in bidi
embedding controls (U+202A..U+202C); each ligature of lam with alef (or alef maksura), one
glyph for two letters, given back as alef then lam; and neutrals at the edge of an embedded
Latin run moved ("Fatima (cashier)" is drawn right and read back as ")Fatima (cashier",
"28 نوفمبر، 2026" as "28 ،نوفمبر 2026"). :func:`readable` drops the controls and applies
NFKC (shaped presentation forms to letters); :func:`as_poppler_reads` swaps the ligatures'
letters in the expected words the same way; :func:`says` then compares an Arabic page's
words in order, not the neutrals between them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from shared.ids import mask_uid, new_id, new_ref
from shared.protocol import Sale, SaleLine
from sync_server import i18n, records
from sync_server.admin import formatting
from sync_server.ledger.sales import apply_push
from sync_server.reports.pdf import FontsMissing, font_paths
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import cashiers, postings, schools, wallets
from tests.server.conftest_helpers import new_code
from tests.server.helpers import enroll, push, sale, void_of

from .conftest import as_role, query, scalar

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("pdftoppm", "pdftotext", "pdfinfo")),
    reason="needs poppler's pdftoppm/pdftotext/pdfinfo: apt-get install poppler-utils "
           "(packaging/dev installs it)")

ARABIC_NAME = "ليلى عبد الله الحربي"
ARABIC_CASHIER = "نورة القحطاني"
BIDI_CONTROLS = dict.fromkeys(map(ord, "\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                                       "\u2066\u2067\u2068\u2069\u061c"))
LAM_ALEF = re.compile("\u0644([\u0627\u0622\u0623\u0625\u0649])")
WORD = re.compile(r"[^\W\d_]+|\d+")  # letters or digits: poppler may glue "1من"


# ------------------------------------------------------------------ reading a PDF back


def readable(text: str) -> str:
    return unicodedata.normalize("NFKC", text).translate(BIDI_CONTROLS)


def as_poppler_reads(words: str) -> str:
    return LAM_ALEF.sub("\\1\u0644", unicodedata.normalize("NFKC", words))


def says(text: str, words: str, lang: str) -> bool:
    """``words`` are in the PDF's ``text`` as poppler reads them back (module docstring):
    on an Arabic page, the same words in the same order, brackets, commas and other
    neutrals aside."""
    if lang == "ar":
        return " ".join(WORD.findall(as_poppler_reads(words))) in " ".join(WORD.findall(text))
    return words in text


def pdf_pages(path: Path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True,
                          timeout=60).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))  # type: ignore[union-attr]


def pdf_text(path: Path) -> str:
    return readable(subprocess.run(["pdftotext", "-layout", str(path), "-"],
                                   capture_output=True, text=True, check=True,
                                   timeout=60).stdout)


def render_page_one(path: Path) -> Path:
    """``pdftoppm -r 50 -f 1 -l 1``: exit 0 and a PNG with ink on it."""
    from PIL import Image

    done = subprocess.run(["pdftoppm", "-r", "50", "-f", "1", "-l", "1", "-png", str(path),
                           str(path.with_suffix(""))], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    png = next(path.parent.glob(path.stem + "*.png"))
    assert png.stat().st_size > 0
    with Image.open(png) as image:
        assert image.size[0] > 300 and image.size[1] > 400  # A4 at 50 dpi: 413 x 585
        darkest, _lightest = image.convert("L").getextrema()
        assert darkest < 100, "page 1 rendered blank"
    return png


async def fetch_pdf(admin: Any, url: str, path: Path) -> Path:
    resp = await admin.get(url)
    body = await resp.read()
    assert resp.status == 200, (url, resp.status, body[:300])
    assert resp.content_type == "application/pdf"
    assert body.startswith(b"%PDF-")
    path.write_bytes(body)  # noqa: ASYNC240 (a few kB into the test's tmp dir)
    return path


def shown(amount: int, currency: str, lang: str) -> str:
    """An amount as the console's table cells show it."""
    return formatting.amount(amount, currency, lang=lang)


async def use_language(admin: Any, lang: str) -> None:
    resp = await admin.post("/admin/language", {"lang": lang, "next": "/admin/"})
    assert resp.status == 303


# ------------------------------------------------------------------ the Z report


async def test_z_report_pdf_fits_one_page_with_12_tills_and_20_cashiers(
        client: Any, demo: dict[str, Any], db_url: str, tmp_path: Path) -> None:
    school = demo["schools"][0]
    currency, tz = school["currency"], ZoneInfo(await scalar(db_url, sa.select(
        schools.c.timezone).where(schools.c.school_id == school["school_id"])))
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            # The demo has two: twenty in all. One is made as the console makes it; the
            # others share its PIN hash (argon2 takes a second per PIN on a busy machine).
            first = await records.create_cashier(conn, school["school_id"], ARABIC_CASHIER,
                                                 "700000")
            school["cashiers"].append({"cashier_id": first, "name": ARABIC_CASHIER})
            row = (await conn.execute(sa.select(cashiers).where(
                cashiers.c.cashier_id == first))).one()
            for i in range(17):
                cid, name = new_id("csh"), f"Cashier {i + 4:02d}"
                await conn.execute(sa.insert(cashiers).values(
                    {**row._asdict(), "cashier_id": cid, "name": name}))
                school["cashiers"].append({"cashier_id": cid, "name": name})
    finally:
        await engine.dispose()
    tills = []
    for i in range(12):
        device = await enroll(client, await new_code(db_url, school["school_id"]),
                              name=f"Till {i + 1:02d}")
        tills.append(device)
    expected_sales, expected_count, voided = 0, 0, 0
    cashier_turn = 0
    for t, device in enumerate(tills):
        batch = []
        for k in range(2):
            body = sale(school, k + 1, wallet=1 + (t + k) % 6, items=(k % 3, (k + 1) % 3),
                        cashier=cashier_turn % 20, offline=False)
            cashier_turn += 1
            batch.append(body)
            expected_sales += body["total"]
            expected_count += 1
        if t == 0:
            batch.append(void_of(batch[0], 3))
            voided += batch[0]["total"]
        result = await push(client, device["device_token"], batch)
        assert all(r["status"] == "applied" for r in result["results"]), result
    today = datetime.now(UTC).astimezone(tz).date()
    admin = await as_role(client, demo, "admin")

    for lang in ("en", "ar"):
        await use_language(admin, lang)
        path = await fetch_pdf(admin, f"/admin/reports/z.pdf?day={today.isoformat()}",
                               tmp_path / f"z-{lang}.pdf")
        assert pdf_pages(path) == 1
        render_page_one(path)
        text = pdf_text(path)
        for figure in (expected_sales, -voided, expected_sales - voided):
            assert shown(figure, currency, lang) in text, (lang, figure)
        # The page's totals row, as the page formats it, is in the PDF too.
        page = await admin.page(f"/admin/reports/z?day={today.isoformat()}")
        totals = page.split('id="z-totals"')[1].split("</tr>")[0]
        figures = re.findall(r'data-minor="(-?\d+)">(?:<strong>)?([^<]+)<', totals)
        assert len(figures) == 4  # sales, voids, reversals, net
        for minor, text_shown in figures:
            assert text_shown == shown(int(minor), currency, lang)
            assert text_shown in text, (lang, text_shown)
        assert formatting.number(expected_count, lang=lang) in text
        for i in range(12):
            assert f"Till {i + 1:02d}" in text
        for c in school["cashiers"]:
            assert says(text, c["name"], lang), (lang, c["name"])
        assert readable(school["name"]) in text
        with i18n.language(lang):
            title = i18n.gettext("End of day (Z report)")
            day_words = formatting.day(today, "full")
        assert says(text, title, lang), (lang, title)
        assert says(text, day_words, lang), (lang, day_words)
    with i18n.language("ar"):
        assert re.search("[\u0600-\u06ff]", i18n.gettext("End of day (Z report)"))


async def test_z_report_day_is_checked_and_scoped(client: Any, demo: dict[str, Any],
                                                  tmp_path: Path) -> None:
    admin = await as_role(client, demo, "admin")
    assert (await admin.get("/admin/reports/z.pdf?day=2026-13-40")).status == 400
    # No ?day: the school's today; an empty day still prints, with the tills listed.
    path = await fetch_pdf(admin, "/admin/reports/z.pdf", tmp_path / "today.pdf")
    assert pdf_pages(path) == 1
    viewer = await as_role(client, demo, "viewer")
    assert (await viewer.get("/admin/reports/z.pdf?day=2026-11-01")).status == 200
    assert (await viewer.post("/admin/logout")).status == 303
    resp = await client.get("/admin/reports/z.pdf", allow_redirects=False)
    assert resp.status in (302, 303) and "/admin/login" in resp.headers["Location"]


# ------------------------------------------------------------------ the statement


def month_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day.replace(day=1), datetime.min.time(), tz).astimezone(UTC)


def following(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


async def journal(db_url: str, wallet_id: str) -> list[tuple[datetime, int]]:
    """The wallet's postings as (posted_at, signed amount), read raw."""
    rows = await query(db_url, sa.select(postings.c.from_account, postings.c.to_account,
                                         postings.c.amount, postings.c.posted_at)
                       .where(sa.or_(postings.c.from_account == wallet_id,
                                     postings.c.to_account == wallet_id)))
    return [(r.posted_at if r.posted_at.tzinfo else r.posted_at.replace(tzinfo=UTC),
             int(r.amount) if r.to_account == wallet_id else -int(r.amount)) for r in rows]


async def ledger_balance(db_url: str, wallet_id: str, before: datetime) -> int:
    """The wallet's balance at ``before`` from the raw journal, summed here in Python."""
    return sum(amount for at, amount in await journal(db_url, wallet_id) if at < before)


async def test_statement_opening_movements_closing_match_the_journal(
        client: Any, demo: dict[str, Any], db_url: str, tmp_path: Path) -> None:
    school = demo["schools"][0]
    currency = school["currency"]
    tz = ZoneInfo(await scalar(db_url, sa.select(schools.c.timezone).where(
        schools.c.school_id == school["school_id"])))
    wallet = school["wallets"][1]
    wid, uid = wallet["wallet_id"], wallet["credential_uid"]
    admin = await as_role(client, demo, "admin")
    resp = await admin.post(f"/admin/wallets/{wid}/settings", {"display_name": ARABIC_NAME})
    assert resp.status == 303

    this_month = datetime.now(UTC).astimezone(tz).date().replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    device = await enroll(client, await new_code(db_url, school["school_id"]))
    # Last month: three sales reach the ledger on the 10th (its own push, a past receipt).
    received = datetime.combine(last_month + timedelta(days=9), datetime.min.time(),
                                tz).replace(hour=15)
    product = school["products"][0]
    engine = create_engine(db_url)
    try:
        batch = [Sale(ref=new_ref(), seq=i + 1, kind="sale", voids=None,
                      created_at=received - timedelta(hours=3, minutes=i),
                      cashier_id=school["cashiers"][0]["cashier_id"], wallet_id=wid,
                      credential_uid=uid, lines=[SaleLine(
                          product_id=product["product_id"], name=product["name"], quantity=1,
                          unit_price=product["price"])], total=product["price"], offline=True)
                 for i in range(3)]
        outcome = await apply_push(engine, school["school_id"], device["device_id"], batch,
                                   received_at=received)
        assert all(r["status"] == "applied" for r in outcome.results), outcome.results
    finally:
        await engine.dispose()
    # This month: two sales and a void through the device API, a top-up and an adjustment
    # in the console.
    first, second = sale(school, 4), sale(school, 5, items=(1, 2))
    await push(client, device["device_token"], [first, second, void_of(first, 6)])
    for kind, amount in (("topup", "25.00"), ("adjustment", "-1.25")):
        resp = await admin.post(f"/admin/wallets/{wid}/money", {
            "kind": kind, "amount": amount, "reason": f"test {kind}", "idem_key": new_ref()})
        assert resp.status == 303

    for month in (last_month, this_month):
        start, end = month_start(month, tz), month_start(following(month), tz)
        opening = await ledger_balance(db_url, wid, start)
        closing = await ledger_balance(db_url, wid, end)
        count = sum(1 for at, _amount in await journal(db_url, wid) if start <= at < end)
        assert count >= (3 if month == last_month else 5)  # the seed's top-up may be in too
        for lang in ("en", "ar"):
            await use_language(admin, lang)
            page = await admin.page(f"/admin/wallets/{wid}/statement?month={month:%Y-%m}")
            assert f'id="opening">{shown(opening, currency, lang)}<' in page
            assert f'id="closing">{shown(closing, currency, lang)}<' in page
            cells = re.findall(r'<td class="num">([^<]*)</td><td class="num">([^<]*)</td>',
                               page.split('id="movements"')[1].split("</table>")[0])
            balance, movements = opening, []
            for amount_text, balance_text in cells[1:-1]:  # between opening and closing rows
                balance += int(Decimal(amount_text.replace(",", "")).scaleb(2))
                assert balance_text == shown(balance, currency, lang)
                movements.append(amount_text)
            assert balance == closing  # opening + movements = closing
            assert len(movements) == count
            assert uid not in page

            path = await fetch_pdf(admin, f"/admin/wallets/{wid}/statement.pdf"
                                          f"?month={month:%Y-%m}", tmp_path / f"{month}-{lang}.pdf")
            render_page_one(path)
            text = pdf_text(path)
            assert says(text, ARABIC_NAME, "ar"), lang  # Arabic letters on both pages
            for figure in (opening, closing):
                assert shown(figure, currency, lang) in text, (lang, figure)
            for amount_text in movements:
                assert amount_text in text
            assert uid not in text and readable(mask_uid(uid)) in text
            with i18n.language(lang):
                title = i18n.gettext("Monthly statement")
            assert says(text, title, lang), (lang, title)
    # The month that is running ends at the wallet's balance now.
    now_balance = await scalar(db_url, sa.select(wallets.c.balance).where(
        wallets.c.wallet_id == wid))
    assert await ledger_balance(db_url, wid, month_start(following(this_month), tz)) == int(
        now_balance)


async def test_statement_roles_scoping_and_bad_months(client: Any, demo: dict[str, Any],
                                                      tmp_path: Path) -> None:
    own = demo["schools"][0]["wallets"][0]
    other = demo["schools"][1]["wallets"][0]
    viewer = await as_role(client, demo, "viewer")
    page = await viewer.page(f"/admin/wallets/{own['wallet_id']}/statement")
    assert own["credential_uid"] not in page
    path = await fetch_pdf(viewer, f"/admin/wallets/{own['wallet_id']}/statement.pdf",
                           tmp_path / "viewer.pdf")
    assert own["credential_uid"] not in pdf_text(path)
    wallet_page = await viewer.page(f"/admin/wallets/{own['wallet_id']}")
    assert f"/admin/wallets/{own['wallet_id']}/statement.pdf" in wallet_page
    for role in ("admin", "viewer", "platform"):
        session = await as_role(client, demo, role)
        for suffix in ("statement", "statement.pdf"):
            resp = await session.get(f"/admin/wallets/{other['wallet_id']}/{suffix}")
            assert resp.status == 404, (role, suffix)
    admin = await as_role(client, demo, "admin")
    for bad in ("2026-13", "26-01", "2026-1", "x", "1999-12", "٢٠٢٦-٠١", "2026-01-01"):
        resp = await admin.get(f"/admin/wallets/{own['wallet_id']}/statement.pdf?month={bad}")
        assert resp.status == 400, bad


def test_missing_fonts_name_the_debian_package(tmp_path: Path) -> None:
    (tmp_path / "NotoSans-Regular.ttf").write_bytes(b"")
    with pytest.raises(FontsMissing, match="fonts-noto-core") as caught:
        font_paths((tmp_path,))
    assert "NotoSansArabic-Regular.ttf" in str(caught.value)
    assert "NotoSans-Regular.ttf," not in str(caught.value)  # that one was found


def test_long_reports_continue_with_headers_and_page_numbers(tmp_path: Path) -> None:
    """A statement of 150 movements and a Z report of 40 tills run over pages: each page
    repeats the table's header and says "Page n of N" with the real N."""
    from sync_server.admin.report_pdfs import draw_statement, draw_z_report
    from sync_server.reports import periods, statement, zreport

    now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    lines = [{"product_id": "p", "name": "عصير برتقال", "quantity": 1, "unit_price": 450}]
    moves = tuple(statement.Movement(f"p{i:03d}", "sale", now, now, -450, 100_000 - 450 * i,
                                     new_ref(), lines, "04A1B2C3D4E5F6", None)
                  for i in range(1, 151))
    st = statement.Statement("s", "مدرسة النور", "SAR", "Asia/Riyadh", "w", ARABIC_NAME,
                             "1001", "3", "3A", date(2026, 11, 1),
                             periods.make("custom", date(2026, 11, 1), date(2026, 11, 30),
                                          "Asia/Riyadh"), 100_000, moves)
    figures = zreport.Figures(sales_count=3, sales_amount=1350)
    tills = tuple(zreport.TerminalLine(f"d{i}", f"Till {i:02d}", "active", figures, now, 3, 3,
                                       (), False) for i in range(40))
    z = zreport.ZReport("s", "Al Noor", "SAR", "Asia/Riyadh", date(2026, 11, 20),
                        periods.day_period(date(2026, 11, 20), "Asia/Riyadh"), now, True,
                        tills, (zreport.CashierLine("c", "Cashier", figures),), figures)
    for lang, draw, report, header in (("ar", draw_statement, st, "Balance (%(currency)s)"),
                                       ("en", draw_z_report, z, "Last contact")):
        with i18n.language(lang):
            path = tmp_path / f"{draw.__name__}.pdf"
            path.write_bytes(draw(report))  # type: ignore[arg-type]
            head = i18n.gettext(header, currency="SAR")
            pages = pdf_pages(path)
            assert pages >= 2, draw.__name__
            for number in range(1, pages + 1):
                one = readable(subprocess.run(
                    ["pdftotext", "-layout", "-f", str(number), "-l", str(number), str(path),
                     "-"], capture_output=True, text=True, check=True, timeout=60).stdout)
                assert says(one, head, lang), (draw.__name__, number)
                assert says(one, i18n.gettext("Page %(page)s of %(pages)s", page=number,
                                              pages=pages), lang), (draw.__name__, number)
        render_page_one(path)
