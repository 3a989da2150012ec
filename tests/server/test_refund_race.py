"""A till's void and an admin's reversal of the same sale, at the same moment, on two processes.

Two real server processes share one database. For each of a few sales, a terminal pushes a void
of it (``POST /api/v1/sync/sales``) to one process while a logged-in school admin presses
"Reverse" on it (``POST /admin/sales/{ref}/reverse`` with the session's csrf token) on the
other, both sent at once. Exactly one of them refunds the sale: the void is answered
``rejected``/``void_twice`` or the reversal is refused, the wallet gets the money back once,
one refund posting and one ``sale_refunds`` row exist, and ``audit-ledger`` is clean.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from typing import Any
from urllib.parse import unquote

import httpx
import sqlalchemy as sa

from sync_server.storage.engine import create_engine
from sync_server.storage.schema import money_ops, postings, sale_refunds, sales, wallets
from tests.conftest import DatabaseFactory

from .conftest_helpers import new_code
from .helpers import sale, void_of

ROUNDS = 6
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def _admin_session(client: httpx.AsyncClient, url: str, admin: dict[str, str]) -> str:
    """Log in through the real form; the client keeps the cookie. Returns the csrf token."""
    page = await client.get(f"{url}/admin/login")
    token = CSRF.search(page.text)
    assert token, page.text
    resp = await client.post(f"{url}/admin/login", data={
        "email": admin["email"], "password": admin["password"],
        "csrf_token": token.group(1), "next": ""})
    assert resp.status_code == 303, resp.text
    home = await client.get(f"{url}/admin/")
    token = CSRF.search(home.text)
    assert home.status_code == 200 and token, home.text
    return token.group(1)


async def _race(urls: list[str], school: dict[str, Any], token: str,
                bodies: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int, str]]:
    """Pushes ``bodies`` (the sales), then races a void and a reversal of each."""
    device = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=60) as till, httpx.AsyncClient(timeout=60) as browser:
        resp = await till.post(f"{urls[0]}/api/v1/sync/sales", json={"sales": bodies},
                               headers=device)
        assert resp.status_code == 200, resp.text
        assert [r["status"] for r in resp.json()["results"]] == ["applied"] * len(bodies)
        csrf = await _admin_session(browser, urls[1], school["admin"])
        outcomes = []
        for n, body in enumerate(bodies):
            void_url, admin_url = urls[n % 2], urls[1 - n % 2]  # each process plays each part
            void = void_of(body, len(bodies) + n + 1)
            pushed, reversed_ = await asyncio.gather(
                till.post(f"{void_url}/api/v1/sync/sales", json={"sales": [void]},
                          headers=device),
                browser.post(f"{admin_url}/admin/sales/{body['ref']}/reverse", data={
                    "csrf_token": csrf, "idem_key": f"race-{n}-{body['ref'][:8]}",
                    "reason": "the till voided it too"}))
            assert pushed.status_code == 200, pushed.text
            assert reversed_.status_code == 303, reversed_.text
            flash = unquote(reversed_.cookies.get("pos_flash", ""))
            outcomes.append((pushed.json()["results"][0], reversed_.status_code, flash))
        return outcomes


async def _ledger(db_url: str, refs: list[str]) -> dict[str, Any]:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            links = {r.sale_ref: r for r in await conn.execute(
                sa.select(sale_refunds).where(sale_refunds.c.sale_ref.in_(refs)))}
            reversals = (await conn.execute(
                sa.select(money_ops.c.sale_ref, sa.func.count().label("n"))
                .where(money_ops.c.kind == "reversal", money_ops.c.sale_ref.in_(refs))
                .group_by(money_ops.c.sale_ref))).all()
            voids = (await conn.execute(
                sa.select(sales.c.voids_ref, sales.c.ref, sales.c.status, sales.c.code)
                .where(sales.c.kind == "void", sales.c.voids_ref.in_(refs)))).all()
            # Postings that give one of these sales' money back (a void posts under its own
            # ref, a reversal under the sale's).
            void_refs = {v.ref: v.voids_ref for v in voids}
            refunds = (await conn.execute(
                sa.select(postings.c.kind, postings.c.sale_ref, postings.c.amount)
                .where(sa.or_(
                    sa.and_(postings.c.kind == "void",
                            postings.c.sale_ref.in_(list(void_refs) or [""])),
                    sa.and_(postings.c.kind == "reversal", postings.c.sale_ref.in_(refs)))))
            ).all()
            balances = {r.wallet_id: int(r.balance) for r in await conn.execute(
                sa.select(wallets.c.wallet_id, wallets.c.balance))}
    finally:
        await engine.dispose()
    return {"links": links, "reversals": {r.sale_ref: int(r.n) for r in reversals},
            "voids": {v.voids_ref: v for v in voids}, "balances": balances,
            "refund_postings": [(void_refs.get(p.sale_ref, p.sale_ref), p.kind, int(p.amount))
                                for p in refunds]}


def test_void_and_reversal_at_once_refund_a_sale_once(two_servers: tuple[str, list[str]],
                                                      db_factory: DatabaseFactory) -> None:
    db_url, urls = two_servers
    school = db_factory.demo["schools"][0]
    enrolled = httpx.post(f"{urls[0]}/api/v1/devices/enroll", json={
        "enrollment_code": asyncio.run(new_code(db_url, school["school_id"])), "name": "Till"})
    assert enrolled.status_code == 201, enrolled.text
    # Wallets 10.. (untouched by other demo use): one sale each, so each balance must end
    # where it started.
    bodies = [sale(school, n + 1, wallet=10 + n, items=(n % 10,)) for n in range(ROUNDS)]
    start = asyncio.run(_ledger(db_url, []))["balances"]

    outcomes = asyncio.run(_race(urls, school, enrolled.json()["device_token"], bodies))

    state = asyncio.run(_ledger(db_url, [b["ref"] for b in bodies]))
    for body, (void, _, flash) in zip(bodies, outcomes, strict=True):
        ref, wallet_id = body["ref"], body["wallet_id"]
        link = state["links"][ref]  # exactly one (the primary key): who refunded it
        if void["status"] == "applied":
            assert flash.startswith("err:Not reversed"), flash
            assert link.kind == "void" and link.void_ref == void["ref"]
            assert ref not in state["reversals"]
        else:
            assert (void["status"], void["code"]) == ("rejected", "void_twice"), void
            assert flash.startswith("ok:Sale reversed"), flash
            assert link.kind == "reversal" and state["reversals"][ref] == 1
            assert state["voids"][ref].status == "rejected"
        assert int(link.amount) == body["total"]
        assert [p for p in state["refund_postings"] if p[0] == ref] == [
            (ref, link.kind, body["total"])]
        assert state["balances"][wallet_id] == start[wallet_id], body

    audit = subprocess.run([sys.executable, "-m", "sync_server", "audit-ledger", "--db", db_url,
                            "--json"], capture_output=True, text=True)
    report = json.loads(audit.stdout)
    assert audit.returncode == 0 and report["ok"], report
