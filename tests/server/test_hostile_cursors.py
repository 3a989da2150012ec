"""Crafted snapshot cursors (issue 11): the spec's answer, a full snapshot, never a 500.

A cursor comes back from the client, so ``Cursor.decode`` checks every part for the shape it
issues (JSON object, versions as integers within BIGINT, short text keys). Before, ``null``,
``1`` and ``[]`` raised AttributeError, ``{"s": 1e400}`` OverflowError, and out-of-range or
NUL-bearing parts with the school's real epoch reached the database (500 on PostgreSQL).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from sync_server.snapshot import Cursor

from .helpers import auth, enroll, snapshot


def _b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def crafted(epoch: str) -> list[str]:
    """Cursors nobody issued; the ones with the real epoch get past the epoch check."""
    big, small = 2**63, -(2**63) - 1
    shapes: list[Any] = [
        None, 1, [], "", True, {}, {"e": epoch}, {"e": None, "s": 1}, {"e": 5, "s": 1},
        {"e": epoch, "s": big}, {"e": epoch, "s": small}, {"e": epoch, "s": -2},
        {"e": epoch, "s": True}, {"e": epoch, "s": "1"}, {"e": epoch, "s": 1.5},
        {"e": epoch, "s": 0, "h": big}, {"e": epoch, "s": 0, "h": -5},
        {"e": epoch, "s": 0, "h": []},
        {"e": epoch, "s": 0, "h": 1, "a": []}, {"e": epoch, "s": 0, "h": 1, "a": {"wallets": 1}},
        {"e": epoch, "s": 0, "h": 1, "a": {"wallets": [big, "w"]}},
        {"e": epoch, "s": 0, "h": 1, "a": {"wallets": [1, "w\u0000"]}},
        {"e": epoch, "s": 0, "h": 1, "a": {"wallets": [1, "w" * 5000]}},
        {"e": epoch, "s": 0, "h": 1, "a": {"wallets": [1]}},
        {"e": epoch, "s": 0, "h": 1, "a": {"nope": [1, "w"]}},
    ]
    texts = [_b64(json.dumps(s)) for s in shapes]
    e = json.dumps(epoch)
    texts += [
        _b64(f'{{"e": {e}, "s": 1e400}}'), _b64('{"s": 1e400}'),
        _b64(f'{{"e": {e}, "s": 99999999999999999999999}}'),
        _b64(f'{{"e": {e}, "s": {"9" * 5000}}}'),    # past int's digit limit
        _b64(f'{{"e": {e}, "s": 0, "h": 1, "a": {{"wallets": [1, "\\ud800"]}}}}'),
        _b64("[" * 3000 + "]" * 3000), _b64(b"\xff\xfe not utf-8"),
        "!!!not base64!!!", "A" * 7000, "%00", "null", "=" * 9,
    ]
    return texts


async def test_crafted_cursors_give_a_full_snapshot(client: Any, demo: dict[str, Any]) -> None:
    school = demo["schools"][0]
    token = (await enroll(client, school["enrollment_code"]))["device_token"]
    full = await snapshot(client, token)
    issued = Cursor.decode(full["cursor"])
    assert issued is not None and full["full"] is True
    for cursor in crafted(issued.epoch):
        resp = await client.get("/api/v1/sync/snapshot", params={"cursor": cursor},
                                headers=auth(token))
        assert resp.status == 200, (cursor[:80], resp.status, await resp.text())
        body = await resp.json()
        assert body["full"] is True, cursor[:80]
        assert len(body["wallets"]) == len(full["wallets"])
    # The cursor it issued still gives a delta.
    delta = await snapshot(client, token, full["cursor"])
    assert delta["full"] is False


def test_decode_round_trips_what_encode_gives() -> None:
    for cursor in [Cursor("ep", -1), Cursor("ep", 7, 9, {"wallets": (3, "wal_1")}),
                   Cursor("ep", 2**63 - 1)]:
        assert Cursor.decode(cursor.encode()) == cursor
    assert Cursor.decode(Cursor("ep", 2**63).encode()) is None
