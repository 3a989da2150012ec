"""Console input that used to answer 500 or drop the connection (issue 11), on both databases.

Numbers too big for the database (roster limits, row numbers in paths and forms), digits that
are not ASCII, a CR/LF that would end up in a Location header, forms that do not decode: each
gets a clean answer a person can read, and nothing changes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import aiohttp
import sqlalchemy as sa

from sync_server.storage.schema import schools, wallets
from tests.server.hostile import recorded, request_bytes, send

from .conftest import as_role, csrf_of, query


async def _upload(client: Any, csrf: str, text: str | bytes) -> Any:
    form = aiohttp.FormData()
    form.add_field("csrf_token", csrf)
    form.add_field("file", text.encode() if isinstance(text, str) else text,
                   filename="roster.csv", content_type="text/csv")
    return await client.post("/admin/roster", data=form, allow_redirects=False)


async def test_roster_daily_limits_beyond_the_console_bound_are_refused_rows(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    admin = await as_role(client, demo, "admin")
    rows = ("student_number,name,daily_limit\n"
            "H-1,Huge One,1e17\nH-2,Huge Two,12345678901234567890\n"
            "H-3,Huge Three,1e99999999999\nH-4,Huge Four," + "9" * 60 + "\n"
            "H-5,Fine,15.00\n")
    resp = await _upload(client, admin.csrf, rows)
    assert resp.status == 200, await resp.text()
    report = await resp.text()
    assert "1 created" in report and "4 refused" in report
    assert "more than 10,000,000.00" in report and "not an amount" in report
    made = await query(db_url, sa.select(wallets.c.student_number, wallets.c.daily_limit)
                       .where(wallets.c.student_number.like("H-%")))
    assert [tuple(r) for r in made] == [("H-5", 1500)]

    before = await recorded(db_url)
    nul = await _upload(client, admin.csrf, b"student_number,name\nN-1,Nul\x00Name\n")
    assert nul.status == 400 and "NUL" in await nul.text()
    assert await recorded(db_url) == before


async def test_crlf_in_next_or_in_a_path_never_breaks_the_location_header(
        client: Any, demo: dict[str, Any]) -> None:
    school = demo["schools"][0]
    page = await client.get("/admin/login?next=/admin/wallets%0d%0aSet-Cookie:%20evil=1")
    assert page.status == 200
    resp = await client.post("/admin/login", allow_redirects=False, data={
        "email": school["admin"]["email"], "password": school["admin"]["password"],
        "csrf_token": csrf_of(await page.text()),
        "next": "/admin/wallets\r\nSet-Cookie: evil=1"})
    assert resp.status == 303 and resp.headers["Location"] == "/admin/"
    assert "evil" not in str(resp.cookies)

    # A refused form redirects back to a URL built from the path's own (decoded) part.
    home = await client.get("/admin/", allow_redirects=False)
    csrf = csrf_of(await home.text())
    back = await client.post("/admin/wallets/x%0D%0ASet-Cookie:%20evil=1/settings",
                             data={"csrf_token": csrf, "daily_limit": "lots"},
                             allow_redirects=False)
    assert back.status == 303
    assert back.headers["Location"] == "/admin/wallets/x%0D%0ASet-Cookie:%20evil=1"
    assert "evil" not in str(back.cookies)


async def test_row_numbers_beyond_bigint_or_not_ascii_are_not_found(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    admin = await as_role(client, demo, "admin")
    before = await recorded(db_url)
    for path, form in [
        ("/admin/exceptions/conflicts/99999999999999999999/review", {"note": "n"}),
        ("/admin/exceptions/conflicts/١٢/review", {"note": "n"}),
        ("/admin/exceptions/gaps/dev_x/99999999999999999999/review", {"note": "n"}),
        ("/admin/exceptions/payments/review", {"note": "n", "conflict_id": "9" * 20}),
        ("/admin/exceptions/payments/review", {"note": "n", "conflict_id": "²"}),
    ]:
        resp = await admin.post(path, form)
        assert resp.status == 404, (path, form, resp.status, await resp.text())
    assert await recorded(db_url) == before


async def test_settings_hours_in_digits_int_refuses_are_a_form_error(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    admin = await as_role(client, demo, "admin")
    fields = {"offline_max_sale": "50.00", "offline_max_unsynced_total": "2000.00",
              "overdraft_limit": "0", "offline_max_hours": "²"}
    sid = schools.c.school_id == school["school_id"]
    before = await query(db_url, sa.select(schools).where(sid))
    resp = await admin.post("/admin/settings", fields)
    assert resp.status == 303
    assert "offline hours must be a whole number" in unquote(resp.cookies["pos_flash"].value)
    assert await query(db_url, sa.select(schools).where(sid)) == before


async def test_forms_that_do_not_decode_are_a_plain_400(client: Any, demo: dict[str, Any],
                                                        db_url: str) -> None:
    admin = await as_role(client, demo, "admin")
    session = next(c.value for c in client.session.cookie_jar if c.key == "pos_admin").encode()
    cookie = (b"Cookie", b"pos_admin=" + session)
    csrf = admin.csrf.encode()
    multipart = (b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n" + csrf
                 + b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n"
                 + b"Tea \xff\xfe\r\n--XyZ--\r\n")
    cases = [
        (b"application/x-www-form-urlencoded", b"csrf_token=" + csrf + b"&name=Tea\xff\xfe"),
        (b"application/x-www-form-urlencoded; charset=no-such-charset",
         b"csrf_token=" + csrf + b"&name=Tea"),
        (b"multipart/form-data; boundary=XyZ", multipart),
        (b"multipart/form-data", b"no boundary at all"),
    ]
    before = await recorded(db_url)
    for content_type, body in cases:
        resp = await send(client, request_bytes("POST", "/admin/products",
                                                [cookie, (b"Content-Type", content_type)], body))
        assert resp.status == 400, (content_type, resp.status, resp.body[:300])
        assert resp.content_type == "text/plain"
    assert await recorded(db_url) == before


LISTS = {"/admin/sales": ["from", "to", "device", "cashier", "wallet", "student", "status",
                          "kind", "flag", "page"],
         "/admin/sales.csv": ["from", "to", "student"],
         "/admin/audit": ["from", "to", "action", "actor", "target", "page"],
         "/admin/payments": ["from", "to", "state", "q", "unassigned", "page"],
         "/admin/wallets": ["q", "status", "page"], "/admin/bracelets": ["q", "status", "page"]}
DAYS = ["0001-01-01", "9999-12-31", "0002-01-01", "9998-12-31", "2026-02-30"]
ODD_VALUES = ["99999999999999999999", "١٢", "'; --%_", "x" * 3000]


async def test_every_list_filter_takes_any_value_a_person_can_type(
        client: Any, demo: dict[str, Any]) -> None:
    """Days at the calendar's ends used to turn into instants Python cannot hold (500)."""
    admin = await as_role(client, demo, "admin")
    for page, params in LISTS.items():
        for name in params:
            for value in DAYS if name in ("from", "to") else ODD_VALUES:
                resp = await admin.get(page, params={name: value})
                assert resp.status == 200, (page, name, value[:20], resp.status)
