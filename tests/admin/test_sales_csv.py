"""The fast sales export (admin/sales_csv.py) writes the bytes the row-by-row export did.

The reference below is the export as it was before issue 15's speed work: the list's typed
rows (names joined per row, JSON and timestamps decoded by SQLAlchemy) with ``safe_cell`` on
every cell. Both run on the same real database (SQLite and PostgreSQL) with what makes the
fast path's shortcuts matter: a void, a rejected sale, a reversal, an Arabic name, names that
start a formula or hold a comma, quote or separator, every sort order.
"""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import parse_qsl

import sqlalchemy as sa
from multidict import MultiDict

from shared.money import format_minor
from sync_server.admin import sales as sales_admin
from sync_server.admin.csv_cells import safe_cell
from sync_server.admin.sales_csv import CSV_BOM, HEADER, iso, items_text
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import cashiers, devices, wallets
from tests.server.helpers import enroll, push, sale, void_of

from .conftest import as_role

NAMES = ['=HYPERLINK("http://x","y")', "عمر الفاروق", 'Smith, "Jo"', " -2+3", "a;=1+1",
         "Ｌｅｅ\tTab"]


def reference(rows: list[Any], currency: str) -> bytes:
    def major(amount: Any) -> str:
        return "" if amount is None else format_minor(int(amount), currency,
                                                      with_code=False).replace(",", "")

    def signed(r: Any) -> int:
        return -int(r.total) if r.kind == "void" else int(r.total)

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(HEADER)
    for r in rows:
        writer.writerow([safe_cell(v) for v in (
            r.ref, r.received_at.isoformat(), r.created_at.isoformat(), r.business_day,
            r.device_name, r.seq, r.kind, r.cashier_name, r.student_number, r.display_name,
            r.wallet_id, major(signed(r)), currency, r.status, r.code,
            " ".join(r.flags or []), major(r.balance_after), "yes" if r.offline else "no",
            r.refund_kind, r.refund_ref, items_text(r.lines),
            major(signed(r) if r.status == "applied" else 0))])
    return "\ufeff".encode() + buf.getvalue().encode()


async def test_fast_export_writes_the_reference_bytes(client: Any, demo: dict[str, Any],
                                                      db_url: str) -> None:
    school = demo["schools"][0]
    sid = school["school_id"]
    engine = create_engine(db_url)
    async with engine.begin() as conn:
        for i, name in enumerate(NAMES):
            await conn.execute(sa.update(wallets).where(
                wallets.c.wallet_id == school["wallets"][i]["wallet_id"])
                .values(display_name=name))
        await conn.execute(sa.update(cashiers).where(
            cashiers.c.cashier_id == school["cashiers"][0]["cashier_id"])
            .values(name="@cashier, one"))
    dev = await enroll(client, school["enrollment_code"])
    async with engine.begin() as conn:
        await conn.execute(sa.update(devices).where(devices.c.device_id == dev["device_id"])
                           .values(name="+Counter"))
    pushed = [sale(school, i + 1, wallet=i, items=(i % 3,)) for i in range(len(NAMES))]
    pushed.append(sale(school, 7, wallet=1, total=1))  # total mismatch -> rejected
    pushed.append(void_of(pushed[0], 8))
    out = await push(client, dev["device_token"], pushed)
    assert {r["status"] for r in out["results"]} == {"applied", "rejected"}
    admin = await as_role(client, demo, "admin")
    reversed_ref = pushed[1]["ref"]
    resp = await admin.post(f"/admin/sales/{reversed_ref}/reverse",
                            {"reason": "wrong child", "idem_key": "k-test-1"})
    assert resp.status == 303

    queries = ["", "status=applied", "status=voided", "sort=student&dir=asc",
               "sort=terminal", "sort=cashier&dir=desc", "sort=total&dir=asc",
               f"student={NAMES[1][:3]}"]
    try:
        for query in queries:
            got = await (await admin.get("/admin/sales.csv?" + query)).read()
            request: Any = type("R", (), {"query": MultiDict(parse_qsl(query))})()
            async with engine.connect() as conn:
                rows = (await conn.execute(sales_admin.sorted_listing(sid, request))).all()
            assert rows, query
            want = reference(rows, school["currency"])
            assert got.split(b"\r\n") == want.split(b"\r\n"), query  # a readable diff
            assert got == want, query
            if not query:  # the shortcuts were exercised: all kinds, hostile and quoted names
                text = got.decode()
                assert {"void", "rejected", "reversal"} <= set(text.replace(",", " ").split())
                assert "'=HYPERLINK" in text and "'@cashier, one" in text
                assert "'+Counter" in text and '"Smith, ""Jo"""' in text
    finally:
        await engine.dispose()


def test_iso_matches_datetime_isoformat() -> None:
    from datetime import UTC, datetime

    for moment in (datetime(2025, 10, 1, 7, 0, 0, tzinfo=UTC),
                   datetime(2025, 10, 1, 7, 0, 0, 120, tzinfo=UTC)):
        stored = moment.replace(tzinfo=None).isoformat(" ", timespec="microseconds")
        assert iso(stored) == moment.isoformat()
        assert iso(moment) == moment.isoformat()
    assert iso("2025-10-01 07:00:00") == "2025-10-01T07:00:00+00:00"


async def test_export_is_gzipped_for_clients_that_accept_it(client: Any, demo: dict[str, Any],
                                                            db_url: str) -> None:
    """A browser (Accept-Encoding: gzip) gets the same CSV gzipped; a client that does not
    ask for gzip, or refuses it, gets it plain."""
    import gzip

    school = demo["schools"][0]
    dev = await enroll(client, school["enrollment_code"])
    await push(client, dev["device_token"], [sale(school, i + 1, wallet=i % 3)
                                             for i in range(40)])
    admin = await as_role(client, demo, "admin")
    plain = await admin.get("/admin/sales.csv", headers={"Accept-Encoding": "identity"},
                            auto_decompress=False)
    assert plain.status == 200 and "Content-Encoding" not in plain.headers
    text = await plain.read()
    assert text.startswith(CSV_BOM) and text.count(b"\r\n") == 41
    for accept in ("gzip", "gzip, deflate, br", "br;q=1.0, gzip;q=0.8", "*", "*;q=0, gzip"):
        packed = await admin.get("/admin/sales.csv", headers={"Accept-Encoding": accept},
                                 auto_decompress=False)
        assert packed.headers["Content-Encoding"] == "gzip", accept
        assert "Accept-Encoding" in packed.headers["Vary"]
        body = await packed.read()
        assert body != text and gzip.decompress(body) == text, accept
    for refuse in ("gzip;q=0", "gzip; q=0.000", "deflate", "identity, *;q=0", "gzip;q=x"):
        resp = await admin.get("/admin/sales.csv", headers={"Accept-Encoding": refuse},
                               auto_decompress=False)
        assert "Content-Encoding" not in resp.headers, refuse
        assert await resp.read() == text, refuse
