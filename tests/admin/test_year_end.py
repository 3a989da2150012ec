"""Year-end: leavers' money refunded or moved to a sibling through the ledger, once, with
``audit-ledger`` clean; inactive students' wallets closed and bracelets blocked."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from sync_server.storage.schema import audit_log, credentials, money_ops, postings, wallets
from sync_server.storage.schema_people import bracelets

from .conftest import as_role, query, scalar
from .test_features import balance, ledger_ok

RUN = re.compile(r'name="run_id" value="(ye_[0-9a-f]+)"')


async def _set(db_url: str, wallet_id: str, **values: Any) -> None:
    from sync_server.storage.engine import create_engine
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.update(wallets).where(wallets.c.wallet_id == wallet_id)
                               .values(**values))
    finally:
        await engine.dispose()


async def test_year_end_refund_sibling_transfer_and_resubmit(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    ws = school["wallets"]
    leaver, sibling, owing, refunded = (ws[1]["wallet_id"], ws[2]["wallet_id"],
                                        ws[3]["wallet_id"], ws[4]["wallet_id"])
    # Two of them share a parent (the sibling candidate); one owes money (set directly:
    # its postings no longer match, so its balance goes back before the ledger audit).
    await _set(db_url, leaver, parent_email="fam@example.com")
    await _set(db_url, sibling, parent_email="fam@example.com")
    owing_was = await balance(db_url, owing)
    await _set(db_url, owing, balance=-500)
    numbers = dict(await query(db_url, sa.select(wallets.c.wallet_id,
                                                   wallets.c.student_number)))
    before = {w: await balance(db_url, w) for w in (leaver, sibling, refunded)}

    admin = await as_role(client, demo, "admin")
    assert "year-end-choose" in await admin.page("/admin/year-end")
    resp = await admin.post("/admin/year-end/preview", {
        "numbers": f"{numbers[leaver]}\n{numbers[owing]}, {numbers[refunded]} NOPE-1"})
    page = await resp.text()
    assert resp.status == 200, page
    assert 'id="leaver-count">2<' in page and 'id="owing-count">1<' in page
    assert "NOPE-1" in page and "sibling found" in page
    run_id = RUN.search(page).group(1)  # type: ignore[union-attr]
    form = {"run_id": run_id, "wallet": [leaver, refunded], f"to_{leaver}": sibling,
            f"to_{refunded}": "refund"}
    # Managers and viewers are refused before anything is read.
    for role in ("manager", "viewer"):
        other = await as_role(client, demo, role)
        assert (await other.post("/admin/year-end/apply", form)).status == 403
    assert await balance(db_url, leaver) == before[leaver]

    admin = await as_role(client, demo, "admin")
    resp = await admin.post("/admin/year-end/apply", form)
    done = await resp.text()
    assert resp.status == 200, done
    assert 'data-code="transferred"' in done and 'data-code="refunded"' in done
    assert await balance(db_url, leaver) == 0 and await balance(db_url, refunded) == 0
    assert await balance(db_url, sibling) == before[sibling] + before[leaver]
    ops = await query(db_url, sa.select(money_ops.c.kind, money_ops.c.wallet_id,
                                        money_ops.c.amount)
                      .where(money_ops.c.kind.in_(("refund", "transfer")))
                      .order_by(money_ops.c.kind, money_ops.c.amount))
    assert sorted(ops) == sorted([("refund", refunded, -before[refunded]),
                                  ("transfer", leaver, -before[leaver]),
                                  ("transfer", sibling, before[leaver])])
    assert await scalar(db_url, sa.select(sa.func.count()).select_from(postings).where(
        postings.c.kind.in_(("refund", "transfer")))) == 3
    for w in (leaver, refunded):
        row = (await query(db_url, sa.select(wallets).where(wallets.c.wallet_id == w)))[0]
        assert (row.student_status, row.status) == ("inactive", "closed")
        assert row.left_at is not None
        assert await scalar(db_url, sa.select(sa.func.count()).select_from(credentials)
                            .where(credentials.c.wallet_id == w,
                                   credentials.c.status == "active")) == 0
        assert await scalar(db_url, sa.select(sa.func.count()).select_from(bracelets).where(
            bracelets.c.wallet_id == w, bracelets.c.state == "blocked")) >= 1
    sib = (await query(db_url, sa.select(wallets).where(wallets.c.wallet_id == sibling)))[0]
    assert (sib.student_status, sib.status) == ("active", "active")

    # The same form again, and a twin: nothing more moves.
    again = await admin.post("/admin/year-end/apply", form)
    assert 'data-code="already"' in await again.text()
    assert await balance(db_url, sibling) == before[sibling] + before[leaver]
    assert await scalar(db_url, sa.select(sa.func.count()).select_from(money_ops).where(
        money_ops.c.kind.in_(("refund", "transfer")))) == 3
    # The one who owes money: refused if sent anyway, nothing changed.
    resp = await admin.post("/admin/year-end/apply", {"run_id": run_id, "wallet": [owing]})
    assert 'data-code="owing"' in await resp.text()
    row = (await query(db_url, sa.select(wallets).where(wallets.c.wallet_id == owing)))[0]
    assert (int(row.balance), row.student_status) == (-500, "active")
    assert await audit_count(db_url, "student_left") == 2

    # Another school's wallet: not found, nothing changed.
    foreign = demo["schools"][1]["wallets"][0]["wallet_id"]
    foreign_was = await balance(db_url, foreign)
    for form in ({"run_id": run_id, "wallet": [foreign]},
                 {"run_id": run_id, "wallet": [sibling], f"to_{sibling}": foreign}):
        resp = await admin.post("/admin/year-end/apply", form)
        assert resp.status == 404
    assert await balance(db_url, foreign) == foreign_was
    assert await balance(db_url, sibling) == before[sibling] + before[leaver]

    await _set(db_url, owing, balance=owing_was)
    assert await ledger_ok(db_url)


async def audit_count(db_url: str, action: str) -> int:
    return int(await scalar(db_url, sa.select(sa.func.count()).select_from(audit_log)
                            .where(audit_log.c.action == action)))


async def test_year_end_and_student_pages_in_arabic(client: Any, demo: dict[str, Any]) -> None:
    """The new pages are drawn right to left with Arabic words, not English left behind."""
    admin = await as_role(client, demo, "admin")
    switched = await admin.post("/admin/language", {"lang": "ar", "next": "/admin/year-end"})
    assert switched.status == 303
    wallet = demo["schools"][0]["wallets"][1]["wallet_id"]
    for path, arabic in (("/admin/year-end", "نهاية العام: الطلاب المغادرون"),
                         ("/admin/wallets/new", "إضافة طالب"),
                         (f"/admin/wallets/{wallet}/edit", "تعديل الطالب"),
                         ("/admin/imports", "سجل الاستيراد"),
                         (f"/admin/wallets/{wallet}", "هاتف ولي الأمر")):
        page = await admin.page(path)
        assert 'dir="rtl"' in page and arabic in page, path
    resp = await admin.post("/admin/year-end/preview", {"grade": "Grade 2"})
    page = await resp.text()
    assert resp.status == 200 and "معاينة نهاية العام" in page and "يُسترد للأسرة" in page


async def test_year_end_preview_reads_an_uploaded_list(client: Any, demo: dict[str, Any],
                                                       db_url: str) -> None:
    import aiohttp

    school = demo["schools"][0]
    chosen = [w["wallet_id"] for w in school["wallets"][5:8]]
    numbers = [n for (n,) in await query(db_url, sa.select(wallets.c.student_number).where(
        wallets.c.wallet_id.in_(chosen)))]
    admin = await as_role(client, demo, "admin")
    form = aiohttp.FormData()
    form.add_field("csrf_token", admin.csrf)
    body = "name,student_number\n" + "".join(f"Someone,{n}\n" for n in numbers)
    form.add_field("file", body.encode(), filename="leavers.csv", content_type="text/csv")
    resp = await client.post("/admin/year-end/preview", data=form)
    page = await resp.text()
    assert resp.status == 200, page
    assert 'id="leaver-count">3<' in page and "Someone" not in page
    assert all(f'data-wallet="{w}"' in page for w in chosen)
    bad = aiohttp.FormData()
    bad.add_field("csrf_token", admin.csrf)
    bad.add_field("file", "José".encode("latin-1"), filename="x.csv")
    resp = await client.post("/admin/year-end/preview", data=bad)
    assert resp.status == 400
