"""Small builders for server tests: enroll a device, make wire sales from demo data."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.ids import new_ref
from sync_server import restrictions

TRANSACTION_CONTROL = re.compile(r"\s*(BEGIN|COMMIT|ROLLBACK)\b", re.IGNORECASE)


async def enroll(client: Any, code: str, name: str = "Counter 1") -> dict[str, Any]:
    resp = await client.post("/api/v1/devices/enroll",
                             json={"enrollment_code": code, "name": name})
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sale(school: dict[str, Any], seq: int, *, wallet: int = 1, items: tuple[int, ...] = (0,),
         qty: int = 1, ref: str | None = None, created_at: datetime | None = None,
         cashier: int = 0, uid: str | bool | None = True, **override: Any) -> dict[str, Any]:
    """A well-formed sale of demo products ``items`` to demo wallet ``wallet``."""
    w = school["wallets"][wallet]
    lines = [{"product_id": school["products"][i]["product_id"],
              "name": school["products"][i]["name"], "quantity": qty,
              "unit_price": school["products"][i]["price"]} for i in items]
    body = {
        "ref": ref or new_ref(), "seq": seq, "kind": "sale", "voids": None,
        "created_at": (created_at or datetime.now(UTC) - timedelta(seconds=5)).isoformat(),
        "cashier_id": school["cashiers"][cashier]["cashier_id"],
        "wallet_id": w["wallet_id"],
        "credential_uid": w["credential_uid"] if uid is True else (uid or None),
        "lines": lines, "total": sum(ln["quantity"] * ln["unit_price"] for ln in lines),
        "offline": True,
    }
    body.update(override)
    return body


def void_of(original: dict[str, Any], seq: int, **override: Any) -> dict[str, Any]:
    body = dict(original, ref=new_ref(), seq=seq, kind="void", voids=original["ref"],
                created_at=datetime.now(UTC).isoformat())
    body.update(override)
    return body


async def push(client: Any, token: str, sales: list[dict[str, Any]],
               expect: int = 200) -> dict[str, Any]:
    resp = await client.post("/api/v1/sync/sales", json={"sales": sales}, headers=auth(token))
    assert resp.status == expect, await resp.text()
    return dict(await resp.json())


async def snapshot(client: Any, token: str, cursor: str | None = None) -> dict[str, Any]:
    params = {"cursor": cursor} if cursor else {}
    resp = await client.get("/api/v1/sync/snapshot", params=params, headers=auth(token))
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


class SentStatements:
    """The statements an engine sends to its driver, as sent (white space folded), that
    ``keep`` accepts; counted at the cursor, so on both databases. Call ``close`` after."""

    def __init__(self, engine: AsyncEngine,
                 keep: Callable[[str], object] = lambda s: not TRANSACTION_CONTROL.match(s),
                 ) -> None:
        self.engine, self.keep, self.statements = engine, keep, list[str]()
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if self.keep(statement):
            self.statements.append(" ".join(statement.split()))

    def close(self) -> None:
        event.remove(self.engine.sync_engine, "before_cursor_execute", self._seen)


async def lift_a_restriction(conn: AsyncConnection, school: dict[str, Any]) -> None:
    """Two allergens on a demo wallet, then one of them lifted: a wallet with an active
    restriction and a lifted one, both kinds of row the restriction reads must tell apart."""
    for allergens in ({"nuts", "sesame"}, {"sesame"}):
        await restrictions.set_for_wallet(
            conn, school["school_id"], school["wallets"][3]["wallet_id"],
            restrictions.Wanted(frozenset(), frozenset(), frozenset(allergens)), actor="test")
