"""Helpers shared by the benchmarks: databases and a server subprocess."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.health import wait_until_healthy

PG_ADMIN_URL = os.environ.get("POS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def database(kind: str) -> Iterator[str]:
    """A fresh, empty database URL of ``kind`` (sqlite|postgresql), removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="pos-bench-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    name = f"pos_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def server(db_url: str, workers: int = 1) -> Iterator[str]:
    """``pos-server serve`` as a separate process, the way it runs in production. Its log goes
    to the file named by ``POS_BENCH_LOG`` (appended), if set."""
    port = free_port()
    with open(os.environ.get("POS_BENCH_LOG") or os.devnull, "a") as log:
        proc = subprocess.Popen([sys.executable, "-m", "sync_server", "serve", "--db", db_url,
                                 "--port", str(port), "--workers", str(workers)],
                                stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(url, timeout_s=60, process=proc)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def pg_available() -> bool:
    try:
        asyncio.run(_pg("SELECT 1"))
        return True
    except Exception:
        return False
