"""Helpers for admin console tests: log in through the real login form, post with CSRF.

The ``client`` fixture (tests/conftest.py) runs the real app on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from sync_server.storage.engine import create_engine

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "page has no csrf_token field"
    return match.group(1)


class Session:
    """One logged-in browser-like client: remembers the session's CSRF token."""

    def __init__(self, client: Any, csrf: str) -> None:
        self.client, self.csrf = client, csrf

    async def get(self, path: str, **kw: Any) -> Any:
        return await self.client.get(path, allow_redirects=False, **kw)

    async def page(self, path: str) -> str:
        resp = await self.get(path)
        assert resp.status == 200, (path, resp.status, await resp.text())
        return str(await resp.text())

    async def post(self, path: str, data: dict[str, Any] | None = None, *,
                   csrf: bool = True, **kw: Any) -> Any:
        form = dict(data or {})
        if csrf:
            form["csrf_token"] = self.csrf
        return await self.client.post(path, data=form, allow_redirects=False, **kw)


async def login(client: Any, email: str, password: str, *, school_id: str | None = None,
                expect: int = 303) -> Session:
    page = await client.get("/admin/login")
    token = csrf_of(await page.text())
    resp = await client.post("/admin/login", allow_redirects=False,
                             data={"email": email, "password": password,
                                   "csrf_token": token, "next": ""})
    assert resp.status == expect, await resp.text()
    if expect != 303:
        return Session(client, "")
    home = await client.get("/admin/schools" if school_id else "/admin/",
                            allow_redirects=False)
    session = Session(client, csrf_of(await home.text()))
    if school_id:
        picked = await session.post("/admin/schools/select", {"school_id": school_id})
        assert picked.status == 303
    return session


async def as_role(client: Any, demo: dict[str, Any], role: str, school: int = 0) -> Session:
    """Log in as the demo's school admin, manager, viewer or platform admin (looking at
    ``school``)."""
    s = demo["schools"][school]
    if role in ("admin", "manager", "viewer"):
        return await login(client, s[role]["email"], s[role]["password"])
    p = demo["platform_admin"]
    return await login(client, p["email"], p["password"], school_id=s["school_id"])


async def query(db_url: str, stmt: Any) -> list[Any]:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(stmt)).all())
    finally:
        await engine.dispose()


async def scalar(db_url: str, stmt: Any) -> Any:
    rows = await query(db_url, stmt)
    return rows[0][0] if rows else None


async def audit_actions(db_url: str, school_id: str | None = None) -> list[str]:
    from sync_server.storage.schema import audit_log

    stmt = sa.select(audit_log.c.action).order_by(audit_log.c.audit_id)
    if school_id:
        stmt = stmt.where(audit_log.c.school_id == school_id)
    return [r[0] for r in await query(db_url, stmt)]
