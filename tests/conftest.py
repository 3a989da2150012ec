"""Fixtures shared by every test: real databases and the real server.

Server tests run once on SQLite and once on PostgreSQL (``db_url`` is parametrized). Each test
gets its own database cloned from a template that was migrated and seeded with the demo data
once per session (a file copy for SQLite, ``CREATE DATABASE … TEMPLATE`` for PostgreSQL), so
tests are isolated and the suite stays fast.

PostgreSQL: ``POS_TEST_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``).
Where no server answers, PostgreSQL cases skip and say how to enable them; ``packaging/dev
test`` never lets that happen (packaging/throwaway_postgres.py runs a cluster for the run).

``packaging/dev test`` runs two pytest-xdist processes (``-n 2 --dist loadgroup``). Every
process builds its own templates in its own temporary directory, and its PostgreSQL databases
carry its name (``pos_t_gw0_…``), so a leftover database says which process made it. Tests that
share something fixed (pcscd's vpcd ports, an X display) carry one ``xdist_group`` mark and run
in one process, one after another.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sync_server.config import ServerConfig

PG_ADMIN_URL = os.environ.get("POS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
WEBHOOK_SECRET = "test-webhook-secret-not-for-production"
# Tests talk plain HTTP to 127.0.0.1, where a browser or client would not send back a Secure
# cookie (the default). Servers started as processes inherit this; configs built here say so.
os.environ.setdefault("POS_SECURE_COOKIES", "false")


def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _pg_exec(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_pg_dsn(PG_ADMIN_URL), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _worker() -> str:
    """``gw0``, ``gw1``… in a pytest-xdist process, ``main`` in a plain pytest run."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _pg_database_url(name: str) -> str:
    base, _, _ = _pg_dsn(PG_ADMIN_URL).rpartition("/")
    return f"{base}/{name}"


async def _prepare(db_url: str) -> dict[str, Any]:
    from sync_server.demo import seed
    from sync_server.storage.engine import create_engine
    from sync_server.storage.migrate import upgrade

    await upgrade(db_url)
    engine = create_engine(db_url)
    try:
        return await seed(engine)
    finally:
        await engine.dispose()


class DatabaseFactory:
    """Hands out fresh, migrated, demo-seeded databases of one kind."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind, self.workdir = kind, workdir
        self.demo: dict[str, Any] = {}
        self._template: str = ""
        self._made: list[str] = []

    def setup(self) -> None:
        if self.kind == "sqlite":
            path = self.workdir / "template.db"
            self.demo = asyncio.run(_prepare(f"sqlite:///{path}"))
            self._template = str(path)
        else:
            self._template = self._create_pg("pos_tpl")
            self.demo = asyncio.run(_prepare(_pg_database_url(self._template)))

    def new(self) -> str:
        if self.kind == "sqlite":
            path = self.workdir / f"db-{uuid.uuid4().hex[:8]}.db"
            shutil.copyfile(self._template, path)
            return f"sqlite:///{path}"
        return _pg_database_url(self._create_pg("pos_t", template=self._template))

    def new_empty(self) -> str:
        """A database with no schema at all (for migration tests)."""
        if self.kind == "sqlite":
            return f"sqlite:///{self.workdir / f'empty-{uuid.uuid4().hex[:8]}.db'}"
        return _pg_database_url(self._create_pg("pos_e"))

    def _create_pg(self, prefix: str, template: str | None = None) -> str:
        """A new scratch database, remembered so teardown drops it."""
        name = f"{prefix}_{_worker()}_{uuid.uuid4().hex[:12]}"
        clause = f' TEMPLATE "{template}"' if template else ""
        asyncio.run(_pg_exec(f'CREATE DATABASE "{name}"{clause}'))
        self._made.append(name)
        return name

    def teardown(self) -> None:
        for name in reversed(self._made):
            try:
                asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            except Exception:
                pass


def _pg_reachable() -> str | None:
    try:
        asyncio.run(_pg_exec("SELECT 1"))
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The run's first lines name the real parts it uses, and the ones it will skip without."""
    def found(path: str | None) -> str:
        return path if path and Path(path).exists() else "missing"

    problem = _pg_reachable()
    origin = os.environ.get("POS_TEST_PG_ORIGIN", "from POS_TEST_PG_URL")
    shown = re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", PG_ADMIN_URL)
    database = (f"PostgreSQL: {shown} ({origin})" if problem is None else
                f"PostgreSQL: nothing answers at {shown}, its cases skip ({problem[:120]})")
    vpcd = Path("/etc/reader.conf.d/vpcd")
    return [
        f"real parts: SQLite files; {database}",
        f"real parts: pcscd {found(shutil.which('pcscd'))} + vpcd "
        f"{vpcd if vpcd.exists() else 'missing'}; Chromium {found('/usr/bin/chromium')}; "
        f"Qt platform {os.environ.get('QT_QPA_PLATFORM', 'offscreen')} "
        f"(Xvfb {found(shutil.which('Xvfb'))}); ALSA player {found(shutil.which('aplay'))}",
    ]


@pytest.hookimpl(trylast=True)  # after pytest-xdist's own hook, which names the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In pytest-xdist processes, tests marked ``slow`` (minutes each: a wheel installed into
    a fresh venv, a PyInstaller build) come first, so they start while the other process
    works through short tests instead of starting last and leaving it idle. The sort is
    stable and every process sorts alike (xdist requires the same collection everywhere);
    a plain run keeps the files' order."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    if getattr(config.option, "loadgroup", False):
        _name_xdist_groups(items)


def _name_xdist_groups(items: list[pytest.Item]) -> None:
    """pytest-xdist tells its controller a test's ``xdist_group`` by appending ``@group`` to
    the test's id in the worker. Since pytest 9.2 keeps that id as a structured value, xdist
    3.8's assignment no longer reaches it (pytest-dev/pytest-xdist#1386) and every group
    spreads silently over both processes: two pcscd at once, one of them refused. The
    suffix is set here the way xdist means to, only where it is missing; if even this does
    not reach the id, the run stops rather than run those tests side by side."""
    for item in items:
        names = {str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                 for mark in item.iter_markers("xdist_group")}
        if not names:
            continue
        suffix = "@" + "_".join(sorted(names))
        if item.nodeid.endswith(suffix):
            continue
        from _pytest.nodeid import NodeId  # pytest >= 9.2, where xdist's suffix is lost

        item._id = NodeId.parse(item.nodeid + suffix)
        if not item.nodeid.endswith(suffix):
            raise pytest.UsageError(
                f"{item.nodeid}: its xdist_group could not be given to pytest-xdist; run "
                "without it (packaging/dev test -n 0) or update pytest-xdist")


@pytest.fixture(scope="session")
def sqlite_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory("sqlite", tmp_path_factory.mktemp("sqlite"))
    factory.setup()
    yield factory


@pytest.fixture(scope="session")
def pg_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    problem = _pg_reachable()
    if problem:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL} ({problem}); start it or set "
                    "POS_TEST_PG_URL=postgresql://user@host:port/db, or run packaging/dev test, "
                    "which starts a throwaway cluster")
    factory = DatabaseFactory("postgresql", tmp_path_factory.mktemp("pg"))
    factory.setup()
    yield factory
    factory.teardown()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_factory(request: pytest.FixtureRequest) -> DatabaseFactory:
    name = "sqlite_factory" if request.param == "sqlite" else "pg_factory"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture
def db_url(db_factory: DatabaseFactory) -> str:
    return db_factory.new()


@pytest.fixture
def demo(db_factory: DatabaseFactory) -> dict[str, Any]:
    """The seed-demo output matching ``db_url`` (deep-copied: tests may change it)."""
    return json.loads(json.dumps(db_factory.demo))


@pytest.fixture
def server_config(db_url: str) -> ServerConfig:
    return ServerConfig(db_url=db_url, webhook_secret=WEBHOOK_SECRET, secure_cookies=False)


@pytest.fixture
async def client(aiohttp_client: Any, server_config: ServerConfig) -> Any:
    """The real app in-process over real HTTP (aiohttp's test server), on ``db_url``; every
    /api/v1 answer it gives is held to the published OpenAPI document (tests/contract.py)."""
    from sync_server.app import create_app
    from tests.contract import watch

    app = create_app(server_config)
    broken = watch(app)
    yield await aiohttp_client(app)
    assert not broken, "answers that break the OpenAPI document:\n" + "\n".join(broken[:20])


# ------------------------------------------------------------------ a live server in a thread


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """The real app served on a real port from a background thread (for terminal tests).

    ``stop()`` closes the port (an outage) and keeps the database; ``start()`` serves again on
    the same port.
    """

    def __init__(self, db_url: str, demo: dict[str, Any], port: int | None = None) -> None:
        self.db_url, self.demo = db_url, demo
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: Any = None
        self.broken: list[str] = []  # answers that break the OpenAPI document (tests/contract.py)

    @property
    def config(self) -> ServerConfig:
        return ServerConfig(db_url=self.db_url, webhook_secret=WEBHOOK_SECRET,
                            secure_cookies=False)

    def make_app(self) -> Any:
        """The app this server serves (a subclass may serve a changed one)."""
        from sync_server.app import create_app

        return create_app(self.config)

    def start(self) -> None:
        from aiohttp import web

        from tests.contract import watch

        ready = threading.Event()
        failure: list[BaseException] = []
        app = self.make_app()
        self.broken = watch(app)

        async def serve() -> None:
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
            await site.start()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(serve())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="live-server", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
        self._loop = self._thread = None
        assert not self.broken, ("answers that break the OpenAPI document:\n"
                                 + "\n".join(self.broken[:20]))

    def enrollment_code(self, school: int = 0) -> str:
        """A fresh code for demo school ``school`` (the seeded one is single-use)."""
        from tests.server.conftest_helpers import new_code

        return asyncio.run(new_code(self.db_url, self.demo["schools"][school]["school_id"]))


@pytest.fixture
def live_server(sqlite_factory: DatabaseFactory) -> Iterator[LiveServer]:
    server = LiveServer(sqlite_factory.new(), json.loads(json.dumps(sqlite_factory.demo)))
    server.start()
    yield server
    server.stop()
