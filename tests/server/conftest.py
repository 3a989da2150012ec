"""Fixtures shared by the server tests."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.health import wait_until_healthy
from tests.conftest import DatabaseFactory, free_port


@pytest.fixture
def two_servers(db_factory: DatabaseFactory, tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """Two real `pos-server serve` processes on one database: (db_url, [url, url])."""
    db_url = db_factory.new()
    procs, urls = [], []
    for i in range(2):
        port = free_port()
        log = (tmp_path / f"server{i}.log").open("w")
        procs.append(subprocess.Popen([sys.executable, "-m", "sync_server", "serve", "--db",
                                       db_url, "--port", str(port)], stdout=log,
                                      stderr=subprocess.STDOUT))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url, proc in zip(urls, procs, strict=True):
            wait_until_healthy(url, process=proc)
        yield db_url, urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)


@pytest.fixture
def pg_database(pg_factory: DatabaseFactory) -> tuple[str, dict[str, Any]]:
    """A fresh PostgreSQL database with the demo, and its seed output: for the tests of what
    only PostgreSQL does (the one-statement reads)."""
    return pg_factory.new(), json.loads(json.dumps(pg_factory.demo))
