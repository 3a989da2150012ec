"""The report pages and their CSVs through the real console (SQLite and PostgreSQL).

Totals on a page are read from its ``data-minor`` cells; CSV columns are summed here and must
give the same numbers, signed the way the page counts them.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event as sa_event

from sync_server.keys import engine_key
from tests.server.conftest_helpers import new_code
from tests.server.helpers import enroll, push, sale, void_of

from .conftest import Session, as_role
from .test_webhook import deliver, event

REPORT_PAGES = ["/admin/reports", "/admin/reports/z", "/admin/reports/sales",
                "/admin/reports/sales?by=category&per=hour", "/admin/reports/money",
                "/admin/reports/balances", "/admin/reports/negatives"]
REPORT_CSVS = ["/admin/reports/z.csv", "/admin/reports/sales.csv", "/admin/reports/money.csv",
               "/admin/reports/balances.csv", "/admin/reports/balances.csv?negative=1"]
RIYADH = ZoneInfo("Asia/Riyadh")


async def seed(client: Any, demo: dict[str, Any], db_url: str, school: int = 0) -> dict[str, Any]:
    """Two tills' sales with a void, a reversal by the console, a gateway top-up and refund."""
    s = demo["schools"][school]
    a = await enroll(client, await new_code(db_url, s["school_id"]), "Till A")
    b = await enroll(client, await new_code(db_url, s["school_id"]), "Till B")
    now = datetime.now(UTC) - timedelta(seconds=20)
    s1 = sale(s, 1, wallet=1, items=(0, 1), created_at=now, offline=False)
    s2 = sale(s, 2, wallet=2, items=(2,), created_at=now, cashier=1, offline=False)
    await push(client, a["device_token"], [s1, s2, void_of(s2, 3, offline=False)])
    s3 = sale(s, 1, wallet=4, items=(3,), qty=2, created_at=now)
    s4 = sale(s, 2, wallet=5, items=(0,), created_at=now, cashier=1)
    await push(client, b["device_token"], [s3, s4])
    admin = await as_role(client, demo, "admin", school)
    resp = await admin.post(f"/admin/sales/{s3['ref']}/reverse", {"reason": "wrong"})
    assert resp.status == 303
    w = s["wallets"][6]["wallet_id"]
    assert (await deliver(client, event(w, f"evt_{school}_1", amount=4000,
                                        reference=f"pay_{school}"))).status == 200
    assert (await deliver(client, event(w, f"evt_{school}_2", kind="refund.completed",
                                        amount=1500, reference=f"pay_{school}"))).status == 200
    return {"admin": admin, "sales": [s1, s2, s3, s4], "tills": [a, b]}


def minor(html: str, row_id: str) -> list[int]:
    """The ``data-minor`` values of the row with ``id=row_id``."""
    row = re.search(rf'<tr[^>]*id="{row_id}"[^>]*>(.*?)</tr>', html, re.S)
    assert row, row_id
    return [int(v) for v in re.findall(r'data-minor="(-?\d+)"', row.group(1))]


async def read_csv(session: Session, path: str) -> tuple[Any, list[dict[str, str]]]:
    resp = await session.get(path)
    assert resp.status == 200, (path, await resp.text())
    assert resp.headers["Content-Type"].startswith("text/csv")
    assert resp.headers.get("Transfer-Encoding") == "chunked", path
    body = (await resp.read()).decode("utf-8-sig")
    return resp, list(csv.DictReader(io.StringIO(body)))


def cents(rows: list[dict[str, str]], column: str, where: Any = None) -> int:
    return sum(int(Decimal(r[column]) * 100) for r in rows if where is None or where(r))


@pytest.mark.parametrize("role", ["admin", "viewer", "platform"])
async def test_every_role_reads_every_report(client: Any, demo: dict[str, Any], db_url: str,
                                             role: str) -> None:
    await seed(client, demo, db_url)
    session = await as_role(client, demo, role)
    for path in REPORT_PAGES:
        page = await session.page(path)
        assert 'class="totals"' in page or path == "/admin/reports", path
        assert '<svg viewBox=' in page or path in ("/admin/reports", "/admin/reports/z",
                                                   "/admin/reports/balances",
                                                   "/admin/reports/negatives"), path
    for path in REPORT_CSVS:
        await read_csv(session, path)
    nav = await session.page("/admin/")
    assert 'href="/admin/reports"' in nav


async def test_reports_need_a_session(client: Any) -> None:
    for path in REPORT_PAGES + REPORT_CSVS + ["/admin/reports/z?day=2026-01-01"]:
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"].startswith("/admin/login"), path


async def test_z_report_page_and_csv_agree(client: Any, demo: dict[str, Any],
                                           db_url: str) -> None:
    seeded = await seed(client, demo, db_url)
    admin = seeded["admin"]
    page = await admin.page("/admin/reports/z")
    sales_amount, voids, reversals, net = minor(page, "z-totals")
    totals = {s["ref"]: s["total"] for s in seeded["sales"]}
    s1, s2, s3, s4 = seeded["sales"]
    assert sales_amount == sum(totals.values())
    assert (voids, reversals) == (-s2["total"], -s3["total"])
    assert net == s1["total"] + s4["total"]
    _, rows = await read_csv(admin, "/admin/reports/z.csv")
    school = [r for r in rows if r["section"] == "school"]
    assert len(school) == 1
    for column, expected in [("sales_amount", sales_amount), ("voids_amount", voids),
                             ("reversals_amount", reversals), ("net", net)]:
        assert cents(school, column) == expected
        # Terminals and cashiers each add up to the school's row.
        assert cents(rows, column, lambda r: r["section"] == "terminal") == expected
        assert cents(rows, column, lambda r: r["section"] == "cashier") == expected
    # On every row, sales + voids + reversals = net (voids and reversals are negative).
    for r in rows:
        assert cents([r], "sales_amount") + cents([r], "voids_amount") + \
            cents([r], "reversals_amount") == cents([r], "net")


async def test_sales_breakdown_page_and_csv_agree(client: Any, demo: dict[str, Any],
                                                  db_url: str) -> None:
    seeded = await seed(client, demo, db_url)
    admin = seeded["admin"]
    s1, _, _, s4 = seeded["sales"]
    for query in ("", "?by=category", "?per=hour", "?by=category&per=hour&period=this_week"):
        page = await admin.page("/admin/reports/sales" + query)
        (total,) = minor(page, "breakdown-totals")
        assert total == s1["total"] + s4["total"], query  # voided and reversed sales net out
        _, rows = await read_csv(admin, "/admin/reports/sales.csv" + query)
        assert cents(rows, "amount") == total, query


async def test_money_page_and_csv_agree(client: Any, demo: dict[str, Any], db_url: str) -> None:
    seeded = await seed(client, demo, db_url)
    admin = seeded["admin"]
    page = await admin.page("/admin/reports/money")
    topups, refunds, net = minor(page, "money-totals")
    assert refunds == -1500 and net == topups + refunds
    _, rows = await read_csv(admin, "/admin/reports/money.csv")
    assert cents(rows, "amount") == net
    assert cents(rows, "amount", lambda r: r["reference"] == "pay_0") == 4000 - 1500
    assert "pay_0" in page


async def test_balances_page_and_csv_agree(client: Any, demo: dict[str, Any],
                                           db_url: str) -> None:
    seeded = await seed(client, demo, db_url)
    admin = seeded["admin"]
    today = datetime.now(RIYADH).date()
    for path in ("/admin/reports/balances", f"/admin/reports/balances?day={today}",
                 "/admin/reports/balances?sort=balance&dir=desc"):
        page = await admin.page(path)
        totals = minor(page, "balances-totals")
        _, rows = await read_csv(admin, path.replace("balances", "balances.csv"))
        assert cents(rows, "balance") == totals[-1]
        assert cents(rows, "balance", lambda r: r["balance"].startswith("-")) == totals[0]
    # Yesterday the demo school did not exist yet: nothing to show, nothing to add.
    yesterday = await admin.page(f"/admin/reports/balances?day={today - timedelta(days=1)}")
    assert minor(yesterday, "balances-totals") == [0, 0]
    future = await admin.get(f"/admin/reports/balances?day={today + timedelta(days=2)}")
    assert future.status == 400


async def test_sales_csv_signs_voids_and_sums_to_the_dashboard(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    seeded = await seed(client, demo, db_url)
    admin = seeded["admin"]
    s1, s2, s3, s4 = seeded["sales"]
    today = datetime.now(RIYADH).date().isoformat()
    _, rows = await read_csv(admin, f"/admin/sales.csv?from={today}&to={today}")
    voids = [r for r in rows if r["kind"] == "void"]
    assert len(voids) == 1 and cents(voids, "total") == -s2["total"]
    dashboard = await admin.page("/admin/")
    shown = re.search(r'id="today-total">([^<]+)<', dashboard)
    assert shown
    net = cents(rows, "net")
    # The dashboard counts sales minus voids (a reversal is a console refund, not a void).
    assert net == s1["total"] + s3["total"] + s4["total"]
    assert shown.group(1).replace("\u00a0", " ").endswith(f"{Decimal(net) / 100:,.2f}")
    listing = await admin.page(f"/admin/sales?from={today}&to={today}")
    assert minor(listing, "sales-totals") == [net]


async def test_lists_sort_by_whitelisted_columns_only(client: Any, demo: dict[str, Any],
                                                      db_url: str) -> None:
    seeded = await seed(client, demo, db_url)
    admin = seeded["admin"]
    _, ascending = await read_csv(admin, "/admin/sales.csv?sort=total&dir=asc")
    totals = [Decimal(r["total"]) for r in ascending]
    assert totals == sorted(totals) and totals[0] < 0
    _, descending = await read_csv(admin, "/admin/sales.csv?sort=total&dir=desc")
    assert [Decimal(r["total"]) for r in descending] == sorted(totals, reverse=True)
    page = await admin.page("/admin/sales?sort=total&dir=asc")
    assert 'aria-sort="ascending"' in page
    # An unknown column or direction is ignored: the default order, never an error or SQL.
    _, default = await read_csv(admin, "/admin/sales.csv")
    for hostile in ("sort=total;DROP TABLE sales&dir=asc", "sort=ref&dir=asc",
                    "sort=received&dir=sideways", "sort=__class__"):
        resp, rows = await read_csv(admin, "/admin/sales.csv?" + hostile)
        assert len(rows) == len(default), hostile
    resp = await admin.get("/admin/reports/balances?sort=1%20OR%201=1")
    assert resp.status == 200
    page = await admin.page("/admin/reports/balances?sort=balance&dir=asc")
    balances = [int(v) for v in re.findall(r'<td class="num[^"]*" data-minor="(-?\d+)"', page)]
    assert balances == sorted(balances) and balances


async def test_bad_periods_are_400_with_words(client: Any, demo: dict[str, Any],
                                              db_url: str) -> None:
    admin = await as_role(client, demo, "admin")
    for query, words in [("from=2026-02-01&to=2026-01-01", "before the first"),
                         ("from=2024-01-01&to=2026-01-01", "at most 400 days"),
                         ("from=2026-01-01", "first and a last"),
                         ("from=yesterday&to=2026-01-01", "not a date"),
                         ("period=forever", "unknown period")]:
        for path in ("/admin/reports/sales", "/admin/reports/money.csv"):
            resp = await admin.get(f"{path}?{query}")
            assert resp.status == 400, (path, query)
            assert words in await resp.text(), (path, query)
    assert (await admin.get("/admin/reports/z?day=2026-02-30")).status == 400
    page = await admin.page("/admin/reports/sales?from=2026-01-01&to=2026-01-31")
    assert 'data-first="2026-01-01" data-last="2026-01-31"' in page


async def test_presets_link_to_their_periods(client: Any, demo: dict[str, Any]) -> None:
    admin = await as_role(client, demo, "viewer")
    page = await admin.page("/admin/reports/sales?from=2026-01-01&to=2026-01-31&by=category")
    links = dict(re.findall(r'href="/admin/reports/sales\?([^"]+)"[^>]*data-preset="(\w+)"',
                            page))
    assert set(links.values()) == {"today", "yesterday", "this_week", "this_month",
                                   "last_month"}
    for query, preset in links.items():
        assert "from=" not in query and "by=category" in query.replace("&amp;", "&")
        shown = await admin.page("/admin/reports/sales?" + query.replace("&amp;", "&"))
        assert re.search(rf'class="on" aria-current="true" data-preset="{preset}"', shown)


async def test_reports_never_show_another_school(client: Any, demo: dict[str, Any],
                                                 db_url: str) -> None:
    mine = await seed(client, demo, db_url, school=0)
    await seed(client, demo, db_url, school=1)
    admin = await as_role(client, demo, "admin", 0)  # the client's cookie was school 1's
    page = await admin.page("/admin/reports/z")
    other = demo["schools"][1]
    for w in other["wallets"]:
        assert w["wallet_id"] not in page
    money = await admin.page("/admin/reports/money")
    assert "pay_1" not in money and "pay_0" in money
    _, rows = await read_csv(admin, "/admin/reports/balances.csv")
    assert {r["wallet_id"] for r in rows} == {w["wallet_id"] for w in demo["schools"][0]
                                             ["wallets"]}
    _, z = await read_csv(admin, "/admin/reports/z.csv")
    tills = {r["id"] for r in z if r["section"] == "terminal"}
    assert tills == {t["device_id"] for t in mine["tills"]}


def column_minor(html: str, table_id: str, nth: int) -> list[int]:
    """The amounts of column ``nth`` (0-based among ``class="num"`` cells) of a table, in
    minor units, from the amounts as shown (``1,234.50``, ``—`` skipped)."""
    table = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S)
    assert table, table_id
    out = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(1), re.S)[1:]:
        cells = re.findall(r'<td class="num[^"]*"[^>]*>([^<]*)<', row)
        if len(cells) > nth and cells[nth].strip() not in ("—", ""):
            out.append(int(Decimal(re.sub(r"[^\d.-]", "", cells[nth].replace("−", "-")))
                           * 100))
    return out


async def test_existing_lists_sort_by_their_columns(client: Any, demo: dict[str, Any],
                                                    db_url: str) -> None:
    seeded = await seed(client, demo, db_url)
    admin = seeded["admin"]
    for direction in ("asc", "desc"):
        page = await admin.page(f"/admin/wallets?sort=balance&dir={direction}")
        balances = column_minor(page, "wallets", 0)
        assert len(balances) > 5
        assert balances == sorted(balances, reverse=direction == "desc")
        assert f'aria-sort="{"ascending" if direction == "asc" else "descending"}"' in page
    # An unknown column keeps the default order (by name), the same as no sort at all.
    default = await admin.page("/admin/wallets")
    assert column_minor(await admin.page("/admin/wallets?sort=balance;--&dir=up"),
                        "wallets", 0) == column_minor(default, "wallets", 0)
    for direction in ("asc", "desc"):
        page = await admin.page(f"/admin/payments?sort=amount&dir={direction}")
        amounts = [int(Decimal(re.sub(r"[^\d.]", "", v)) * 100) for v in re.findall(
            r'<td class="num">([^<]*\d[^<]*)</td>\s*<td>', page)]
        assert amounts == sorted(amounts, reverse=direction == "desc")
    page = await admin.page("/admin/exceptions?sort=total&dir=asc")
    assert 'aria-sort="ascending"' in page
    assert (await admin.get("/admin/exceptions?sort=1;DROP&dir=x")).status == 200


async def test_report_pages_in_arabic(client: Any, demo: dict[str, Any], db_url: str) -> None:
    seeded = await seed(client, demo, db_url)
    admin = seeded["admin"]
    resp = await admin.post("/admin/language", {"lang": "ar", "next": "/admin/reports"})
    assert resp.status == 303
    for path, words in [("/admin/reports", "التقارير"), ("/admin/reports/z", "حسب جهاز البيع"),
                        ("/admin/reports/sales", "المبيعات حسب المنتج والفئة"),
                        ("/admin/reports/money", "عمليات الشحن والاسترداد"),
                        ("/admin/reports/negatives", "الأرصدة السالبة")]:
        page = await admin.page(path)
        assert '<html lang="ar" dir="rtl">' in page and words in page, path
    # Exports keep machine-readable numbers whatever the language.
    _, rows = await read_csv(admin, "/admin/reports/z.csv")
    assert all(re.fullmatch(r"-?\d+\.\d\d", r["net"]) for r in rows)


async def test_sales_list_totals_are_capped(client: Any, demo: dict[str, Any], db_url: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the cap the list asks for dates instead of summing a year on every view."""
    from sync_server.admin import sales as sales_page

    seeded = await seed(client, demo, db_url)
    admin = seeded["admin"]
    full = await admin.page("/admin/sales")
    (net,) = minor(full, "sales-totals")
    monkeypatch.setattr(sales_page, "TOTALS_CAP", 4)  # the seed made 5 rows
    capped = await admin.page("/admin/sales")
    assert "choose days" in capped and minor(capped, "sales-totals") == []
    assert "in all" not in capped  # no count the list did not make
    monkeypatch.setattr(sales_page, "TOTALS_CAP", 5)
    assert minor(await admin.page("/admin/sales"), "sales-totals") == [net]


async def test_voided_alone_past_the_cap_is_counted_from_the_links(
        client: Any, demo: dict[str, Any], db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Filtered by voided alone, a list past the cap is known to be so from the refund links,
    without reading the sales; under the cap, or with another filter, the sales are summed."""
    from sync_server.admin import sales as sales_page

    seeded = await seed(client, demo, db_url)
    school = demo["schools"][0]
    till = seeded["tills"][0]["device_token"]
    sold = [sale(school, 10 + i, wallet=2, items=(1,)) for i in range(3)]
    await push(client, till, sold)
    await push(client, till, [void_of(s, 13 + i) for i, s in enumerate(sold)])
    admin = seeded["admin"]
    expected = sum(s["total"] for s in sold) + seeded["sales"][1]["total"]  # the seed's void
    assert minor(await admin.page("/admin/sales?status=voided"), "sales-totals") == [expected]

    summed: list[str] = []

    def seen(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if re.match(r"\s*SELECT count\(\*\) AS n", statement):
            summed.append(statement)

    engine = client.server.app[engine_key]
    sa_event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        monkeypatch.setattr(sales_page, "TOTALS_CAP", 2)
        capped = await admin.page("/admin/sales?status=voided")
        assert "choose days" in capped and summed == []
        # Another filter: the links no longer say how many match, so the sales are read.
        device = seeded["tills"][0]["device_id"]
        await admin.page(f"/admin/sales?status=voided&device={device}")
        assert len(summed) == 1
    finally:
        sa_event.remove(engine.sync_engine, "before_cursor_execute", seen)


def test_every_list_filter_is_known_to_the_totals() -> None:
    """LIST_FILTERS names every parameter that narrows the list: the shortcut above must not
    be taken when another filter applies."""
    from sync_server.admin.sales import LIST_FILTERS, listing

    plain = str(listing("s", {}))
    values = {"from": "2026-01-01", "to": "2026-01-31", "device": "d", "cashier": "c",
              "wallet": "w", "student": "x", "status": "voided", "kind": "void", "flag": "any"}
    assert set(values) == set(LIST_FILTERS)
    for key, value in values.items():
        assert str(listing("s", {key: value})) != plain, key
    assert str(listing("s", {"sort": "total", "page": "2", "other": "x"})) == plain


async def test_flag_filter_finds_flagged_sales(client: Any, demo: dict[str, Any],
                                               db_url: str) -> None:
    seeded = await seed(client, demo, db_url)
    school = demo["schools"][0]
    wallet = school["wallets"][9]
    price = school["products"][0]["price"]
    over = sale(school, 4, wallet=9, items=(0,), qty=wallet["balance"] // price + 1,
                offline=True)
    await push(client, seeded["tills"][0]["device_token"], [over])
    admin = seeded["admin"]
    _, every = await read_csv(admin, "/admin/sales.csv")
    flagged = {r["ref"] for r in every if r["flags"]}
    assert over["ref"] in flagged
    _, any_flag = await read_csv(admin, "/admin/sales.csv?flag=any")
    assert {r["ref"] for r in any_flag} == flagged
    _, overdrafts = await read_csv(admin, "/admin/sales.csv?flag=overdraft")
    assert {r["ref"] for r in overdrafts} == {r["ref"] for r in every
                                              if "overdraft" in r["flags"].split()}
