"""Pulls at lunch rush: a school's tills share one read of a delta, a pull with nothing new
reads only its token and school row, and no cursor can make a kept delta wrong (issue 14).

The statements the app's engine sends are counted at the cursor, on both databases; the
delta cache's own rules (one read in flight per key, a failed read not shared, the bounds)
are checked on the class with reads the test controls.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from sync_server import records
from sync_server import snapshot as snapshots
from sync_server.keys import delta_cache_key, engine_key
from sync_server.snapshot import DeltaCache, Page
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import schools

from .helpers import SentStatements, enroll, lift_a_restriction, snapshot
from .test_metrics import scrape, value

MIRRORED = re.compile(r"\bFROM\s+(wallets|credentials|products|cashiers)\b", re.IGNORECASE)


class Statements(SentStatements):
    """Every statement the app's engine sends (transaction control left out)."""

    def mirrored_reads(self) -> list[str]:
        return [s for s in self.statements if MIRRORED.search(s)]


@pytest.fixture
def statements(client: Any) -> Iterator[Statements]:
    counter = Statements(client.server.app[engine_key])
    yield counter
    counter.close()


async def _tills(client: Any, school: dict[str, Any], n: int) -> list[str]:
    async with client.server.app[engine_key].begin() as conn:
        codes = [await records.create_enrollment_code(conn, school["school_id"],
                                                   timedelta(hours=1))
                 for _ in range(n)]
    return [(await enroll(client, code, name=f"Till {i}"))["device_token"]
            for i, code in enumerate(codes)]


def _without_stamps(page: dict[str, Any]) -> dict[str, Any]:
    return {**page, "server_time": None,
            "wallets": [{**w, "balance_as_of": None} for w in page["wallets"]]}


async def test_a_school_s_tills_share_one_read_of_each_delta(
        client: Any, demo: dict[str, Any], statements: Statements) -> None:
    school = demo["schools"][0]
    tokens = await _tills(client, school, 3)
    cursors = [(await snapshot(client, t))["cursor"] for t in tokens]
    assert len(set(cursors)) == 1  # full snapshots at one version end at one cursor
    engine = client.server.app[engine_key]
    before = await scrape(client)
    for round_, name in enumerate(("Renamed once", "Renamed twice")):
        async with engine.begin() as conn:
            await records.update_wallet(conn, school["school_id"],
                                        school["wallets"][round_]["wallet_id"],
                                        display_name=name)
        statements.statements.clear()
        pages = [await snapshot(client, t, cursors[0]) for t in tokens]
        # Each pull sees this round's change (a kept delta is never one version old) ...
        assert [w["display_name"] for w in pages[0]["wallets"]] == [name]
        assert all(_without_stamps(p) == _without_stamps(pages[0]) for p in pages)
        # ... read once for three tills: the other two pulls read only the token's row. The
        # page is one statement on PostgreSQL; SQLite (no round trips) reads kind by kind.
        one_read = 1 if engine.dialect.name == "postgresql" else 4
        assert len(statements.mirrored_reads()) == one_read, statements.statements
        reads = [s for s in statements.statements if not MIRRORED.search(s)]
        assert sum("FROM devices JOIN schools" in " ".join(s.split()) for s in reads) == 3
        # Each till gets its own stamp, taken at its own pull.
        assert all(w["balance_as_of"] == p["server_time"] for p in pages for w in p["wallets"])
        cursors = [p["cursor"] for p in pages]
    cache = client.server.app[delta_cache_key]
    assert cache.reads == 2 and cache.hits == 4
    after = await scrape(client)  # what a fleet's monitoring sees of it
    moved = {source: value(after, "pos_snapshot_deltas_total", source=source)
             - value(before, "pos_snapshot_deltas_total", source=source)
             for source in ("read", "kept", "joined")}
    assert moved == {"read": 2, "kept": 4, "joined": 0}


async def test_a_pull_with_nothing_new_reads_one_row(
        client: Any, demo: dict[str, Any], statements: Statements) -> None:
    [token] = await _tills(client, demo["schools"][0], 1)
    cursor = (await snapshot(client, token))["cursor"]
    statements.statements.clear()
    page = await snapshot(client, token, cursor)
    assert page["full"] is False and page["cursor"] == cursor
    assert page["wallets"] == page["credentials"] == page["products"] == page["cashiers"] == []
    assert page["settings"]["currency"] == "SAR"
    assert len(statements.statements) == 1, statements.statements
    assert "FROM devices JOIN schools" in " ".join(statements.statements[0].split())


async def test_a_forged_page_cursor_never_stands_for_the_plain_one(
        client: Any, demo: dict[str, Any]) -> None:
    """A cursor naming a page position reads a subset of a delta; a device that forges one
    (no high-water mark, as no cursor of ours has) gets that subset, and the plain cursor's
    pull afterwards still gets every row."""
    school = demo["schools"][0]
    [token] = await _tills(client, school, 1)
    cursor = (await snapshot(client, token))["cursor"]
    changed = sorted(w["wallet_id"] for w in school["wallets"][:3])
    async with client.server.app[engine_key].begin() as conn:
        for wallet_id in changed:
            await records.update_wallet(conn, school["school_id"], wallet_id,
                                        display_name="Changed")
    plain = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    version = plain["s"] + 3 if plain["h"] is None else plain["h"] + 3
    forged = dict(plain, a={"wallets": [version, changed[1]]})
    forged_text = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    subset = await snapshot(client, token, forged_text)
    assert len(subset["wallets"]) < 3
    whole = await snapshot(client, token, cursor)
    assert sorted(w["wallet_id"] for w in whole["wallets"]) == changed


async def _reader_then_waiter(cache: DeltaCache, key: tuple[str], first: Any, second: Any,
                              ) -> tuple[asyncio.Task[Page], asyncio.Task[Page]]:
    """Two gets of one key: the first reading (it has started), the second then waiting."""
    reader = asyncio.create_task(cache.get(key, first))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(cache.get(key, second))
    await asyncio.sleep(0)
    return reader, waiter


def _page(name: str) -> Page:
    return ({"wallets": [{"wallet_id": name}]}, False, {})


async def test_one_read_in_flight_per_key_and_a_failed_read_is_not_shared() -> None:
    cache = DeltaCache()
    release = asyncio.Event()
    calls: list[str] = []

    async def slow(name: str) -> Page:
        calls.append(name)
        await release.wait()
        return _page(name)

    first = asyncio.create_task(cache.get(("k",), lambda: slow("first")))
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.get(("k",), lambda: slow("second")))
    await asyncio.sleep(0)
    release.set()
    assert await first == await second == _page("first")
    assert calls == ["first"] and (cache.reads, cache.hits) == (1, 1)
    assert await cache.get(("k",), lambda: slow("third")) == _page("first")  # kept

    gate = asyncio.Event()

    async def failing() -> Page:
        await gate.wait()
        raise ConnectionError("database went away")

    async def fine() -> Page:
        return _page("own read")

    failed, waiter = await _reader_then_waiter(cache, ("f",), failing, fine)
    gate.set()
    with pytest.raises(ConnectionError):
        await failed
    assert await waiter == _page("own read")  # read for itself, not handed the failure
    # A cancelled reader (its client went away) neither hangs nor fails its waiters.
    hold = asyncio.Event()

    async def forever() -> Page:
        await hold.wait()
        return _page("never")

    reader, waiter = await _reader_then_waiter(cache, ("c",), forever, fine)
    reader.cancel()
    assert await waiter == _page("own read")
    assert ("c",) not in cache._reading


async def test_the_cache_keeps_small_deltas_and_a_bounded_number() -> None:
    cache = DeltaCache(entries=2, max_rows=1)

    async def big() -> Page:
        return ({"wallets": [{"wallet_id": "a"}, {"wallet_id": "b"}]}, False, {})

    await cache.get(("big",), big)
    assert ("big",) not in cache._kept
    for key in ("one", "two", "three"):
        await cache.get((key,), lambda key=key: asyncio.sleep(0, _page(key)))  # type: ignore[misc]
    assert list(cache._kept) == [("two",), ("three",)]


@pytest.mark.postgres
async def test_postgresql_reads_a_page_of_every_kind_in_one_statement(
        pg_database: tuple[str, dict[str, Any]]) -> None:
    """A pull that misses the cache reads its page in one UNION ALL statement on PostgreSQL
    (each statement is a round trip there). It must be exactly the page the kind-by-kind
    reads give, restrictions included (a lifted one left out), at every page size and from
    every cursor a till can hold: compared page by page over the whole school."""
    db_url, demo = pg_database
    school = demo["schools"][0]
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await lift_a_restriction(conn, school)
        async with engine.connect() as conn:
            version = (await conn.execute(sa.select(schools.c.version).where(
                schools.c.school_id == school["school_id"]))).scalar_one()

            def plain(pages: dict[str, list[Any]]) -> dict[str, list[dict[str, Any]]]:
                return {kind: [{name: getattr(r, name)
                                for name in (*snapshots._SENT[kind], "version")} for r in rows]
                        for kind, rows in pages.items()}

            compared = blocked_seen = 0
            for page_rows in (3, 1000):
                for since in (-1, version // 2, version - 1):
                    cursor = snapshots.Cursor("e", since)
                    while True:
                        one_by_one = await snapshots._pages_one_by_one(
                            conn, school["school_id"], cursor, version, page_rows)
                        in_one = await snapshots._pages_in_one(
                            conn, school["school_id"], cursor, version, page_rows)
                        assert plain(in_one[0]) == plain(one_by_one[0])
                        assert in_one[1] == one_by_one[1]
                        compared += 1
                        blocked_seen += len(in_one[1])
                        rows = one_by_one[0]
                        if not any(len(r) == page_rows for r in rows.values()):
                            break
                        after = {k: (int(r[-1].version),
                                     str(getattr(r[-1], snapshots._KINDS[k][1].name)))
                                 for k, r in rows.items() if r}
                        cursor = snapshots.Cursor("e", since, version, {**cursor.after, **after})
        assert compared > 10 and blocked_seen > 0
    finally:
        await engine.dispose()
