"""A database that goes away answers 503 with Retry-After, logs once per change, and comes back.

Real outages of real databases, with the real app in-process: a PostgreSQL cluster of the
test's own crashed with ``pg_ctl -m immediate stop``, restarted as a standby stuck in recovery,
then restarted normally; a SQLite database whose files turn unwritable (``chattr +i``: root
ignores permissions, not the immutable flag; every write then fails with SQLITE_IOERR, as on a
failing disk or a file system remounted read-only). Each time the pushes answered 503 leave
no trace: the same sale is ``applied`` once the database is back.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sync_server.app import create_app
from sync_server.config import ServerConfig
from tests.conftest import WEBHOOK_SECRET, DatabaseFactory, _prepare

from . import pg_cluster
from .helpers import auth, enroll, sale

RETRY_AFTER = 1  # seconds; also how long the database must answer before "available again"
pytestmark = pytest.mark.xdist_group("outages")  # one throwaway cluster for the module


def _config(db_url: str) -> ServerConfig:
    return ServerConfig(db_url=db_url, webhook_secret=WEBHOOK_SECRET,
                        retry_after_seconds=RETRY_AFTER)


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[pg_cluster.Cluster, dict[str, Any]]]:
    reason = pg_cluster.unavailable_reason()
    if reason:
        pytest.skip(f"needs a PostgreSQL cluster of its own: {reason}")
    made = pg_cluster.Cluster()
    try:
        made.init()
        made.start()
        demo = asyncio.run(_prepare(made.url()))
        yield made, demo
    finally:
        made.destroy()


async def _expect_503(client: Any, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    resp = await client.request(method, path, **kwargs)
    assert resp.status == 503, (path, resp.status, await resp.text())
    assert resp.headers["Retry-After"] == str(RETRY_AFTER)
    assert resp.content_type == "application/problem+json"
    return dict(await resp.json())


def _outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("sync_server")]


def _assert_quiet(caplog: pytest.LogCaptureFixture) -> None:
    """No traceback and nothing above WARNING: an outage is not a server error."""
    noisy = [r for r in caplog.records if r.exc_info or r.levelno > logging.WARNING]
    assert noisy == [], [r.getMessage() for r in noisy]


async def _back(client: Any, token: str, body: dict[str, Any]) -> dict[str, Any]:
    """Push until it is answered 200 (the terminal's retry), at most 20 s."""
    for _ in range(100):
        resp = await client.post("/api/v1/sync/sales", json=body, headers=auth(token))
        if resp.status == 200:
            return dict(await resp.json())
        assert resp.status == 503, await resp.text()
        await asyncio.sleep(0.2)
    raise AssertionError("service did not resume")


@pytest.mark.postgres
async def test_postgres_crash_restart_and_recovery_answer_503_then_resume(
        aiohttp_client: Any, cluster: tuple[pg_cluster.Cluster, dict[str, Any]],
        caplog: pytest.LogCaptureFixture) -> None:
    server, demo = cluster
    school = demo["schools"][0]
    client = await aiohttp_client(create_app(_config(server.url())))
    token = (await enroll(client, school["enrollment_code"]))["device_token"]
    first = await client.post("/api/v1/sync/sales", json={"sales": [sale(school, 1)]},
                              headers=auth(token))
    assert first.status == 200
    caplog.set_level(logging.INFO)
    caplog.clear()

    server.crash()
    pending = {"sales": [sale(school, 2)]}
    problem = await _expect_503(client, "POST", "/api/v1/sync/sales", json=pending,
                                headers=auth(token))
    assert problem["type"].endswith("/database-unavailable")
    assert token not in str(problem)
    await _expect_503(client, "GET", "/api/v1/sync/snapshot", headers=auth(token))
    await _expect_503(client, "GET", "/api/v1/health")
    await _expect_503(client, "POST", "/api/v1/devices/enroll",
                      json={"enrollment_code": "x" * 12, "name": "T"})
    page = await client.get("/admin/", cookies={"pos_admin": "s" * 43}, allow_redirects=False)
    assert page.status == 503 and page.headers["Retry-After"] == str(RETRY_AFTER)
    assert page.content_type == "text/html" and "Try again" in await page.text()

    server.start(standby=True)  # up, but in recovery: "the database system is starting up"
    await _expect_503(client, "POST", "/api/v1/sync/sales", json=pending, headers=auth(token))
    await _expect_503(client, "GET", "/api/v1/health")
    server.stop()
    server.start()

    result = await _back(client, token, pending)
    assert [r["status"] for r in result["results"]] == ["applied"]  # the 503s kept nothing
    assert result["acked_seq"] == 2 and result["missing_seqs"] == []
    await asyncio.sleep(RETRY_AFTER + 0.1)
    assert (await client.get("/api/v1/health")).status == 200

    lines = _outage_lines(caplog)
    down = [m for m in lines if m.startswith("database unavailable")]
    up = [m for m in lines if m.startswith("database available again")]
    assert len(down) == 1 and len(up) == 1, lines
    assert "request(s) were answered 503" in up[0]
    _assert_quiet(caplog)


def _chattr(flag: str, *paths: Path) -> None:
    subprocess.run(["chattr", flag, *map(str, paths)], check=True, capture_output=True)


async def test_sqlite_files_turning_unwritable_answer_503_then_resume(
        aiohttp_client: Any, sqlite_factory: DatabaseFactory,
        caplog: pytest.LogCaptureFixture) -> None:
    if shutil.which("chattr") is None:
        pytest.skip("needs chattr (e2fsprogs) to make the database file immutable")
    db_url = sqlite_factory.new()
    path = Path(sa.make_url(db_url).database or "")
    school = sqlite_factory.demo["schools"][0]
    client = await aiohttp_client(create_app(_config(db_url)))
    token = (await enroll(client, school["enrollment_code"]))["device_token"]
    assert (await client.post("/api/v1/sync/sales", json={"sales": [sale(school, 1)]},
                              headers=auth(token))).status == 200
    files = [p for p in (path, path.with_name(path.name + "-wal")) if p.exists()]
    try:
        _chattr("+i", *files)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"this file system has no immutable flag ({exc.stderr.strip()})")
    caplog.set_level(logging.INFO)
    caplog.clear()
    pending = {"sales": [sale(school, 2)]}
    try:
        for _ in range(3):
            await _expect_503(client, "POST", "/api/v1/sync/sales", json=pending,
                              headers=auth(token))
            # Reads still work between the failing writes: no line for each of them.
            assert (await client.get("/api/v1/health")).status == 200
        # A snapshot writes nothing since last contact is batched (sync_server/presence.py):
        # tills keep getting balances and blocked bracelets while the file refuses writes.
        assert (await client.get("/api/v1/sync/snapshot", headers=auth(token))).status == 200
    finally:
        _chattr("-i", *files)

    result = await _back(client, token, pending)
    assert [r["status"] for r in result["results"]] == ["applied"]
    assert result["acked_seq"] == 2 and result["missing_seqs"] == []
    await asyncio.sleep(RETRY_AFTER + 0.1)
    assert (await client.get("/api/v1/health")).status == 200

    lines = _outage_lines(caplog)
    down = [m for m in lines if m.startswith("database unavailable")]
    up = [m for m in lines if m.startswith("database available again")]
    assert len(down) == 1 and len(up) == 1, lines
    assert "database file I/O error" in down[0]
    _assert_quiet(caplog)


async def test_only_errors_from_the_database_stack_count_as_an_outage(
        tmp_path: Path) -> None:
    """A client hanging up raises ConnectionResetError too: that is no database outage."""
    from sync_server.api.outages import DOWN, classify
    from sync_server.storage.engine import create_engine
    from tests.conftest import free_port

    def hung_up() -> None:
        raise ConnectionResetError("Connection lost")

    with pytest.raises(ConnectionResetError) as client_side:
        hung_up()
    assert classify(client_side.value) is None

    engine = create_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/none")
    try:
        with pytest.raises(OSError) as refused:
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
    finally:
        await engine.dispose()
    assert classify(refused.value) == (DOWN, "database not reachable")
