"""`packaging/dev test` brings its own PostgreSQL when none answers (throwaway_postgres.py).

The wrapper runs in a subprocess against a deliberately wrong ``POS_TEST_PG_URL`` (a port where
nothing listens), so it must start a cluster of its own: the command it wraps connects to the
URL it is given and runs ``SELECT 1``; afterwards the cluster's directory is gone and its
postmaster no longer runs, whether the command passed, failed or the wrapper got SIGTERM. The
shared server at 5432 is never touched (the wrapper stops only what it started).
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
WRAPPER = ROOT / "packaging" / "throwaway_postgres.py"
# Loaded from its file: putting packaging/ on sys.path would shadow other modules' names.
_spec = importlib.util.spec_from_file_location("throwaway_postgres", WRAPPER)
assert _spec is not None and _spec.loader is not None
throwaway_postgres = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(throwaway_postgres)

pytestmark = pytest.mark.skipif(
    throwaway_postgres.binaries() is None,
    reason="no PostgreSQL binaries in /usr/lib/postgresql/*/bin: apt-get install postgresql "
           "(packaging/dev test does) or set POS_TEST_PG_BIN")

PROBE = """
import asyncio, os, sys, asyncpg
async def main():
    conn = await asyncpg.connect(os.environ["POS_TEST_PG_URL"], timeout=10)
    print("SELECT 1 ->", await conn.fetchval("SELECT 1"), "| origin:",
          os.environ["POS_TEST_PG_ORIGIN"], flush=True)
    await conn.close()
asyncio.run(main())
if len(sys.argv) > 1:
    import time; time.sleep(float(sys.argv[1]))
sys.exit(3)
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POS_TEST_PG_")}
    env["POS_TEST_PG_URL"] = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    return env


def _cluster_dir(said: str) -> Path:
    found = re.search(r"throwaway cluster in (\S+), port (\d+)", said)
    assert found, said
    return Path(found.group(1))


def _assert_gone(root: Path, port: int) -> None:
    assert not root.exists(), f"{root} left behind"
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(root) not in ps, f"a process of the cluster still runs:\n{ps}"
    assert throwaway_postgres.answers(f"postgresql://postgres@127.0.0.1:{port}/postgres",
                                      timeout=2) is not None


def test_starts_a_cluster_that_answers_and_removes_it_after_a_failing_command() -> None:
    done = subprocess.run([sys.executable, str(WRAPPER), "--", sys.executable, "-c", PROBE],
                          env=_env(), capture_output=True, text=True, timeout=180)
    assert done.returncode == 3, done.stderr  # the command's own exit code, passed on
    first = done.stderr.splitlines()[0]
    assert first.startswith("packaging/dev: PostgreSQL: postgresql://postgres@127.0.0.1:")
    assert "throwaway cluster in" in first and "nothing answered at" in first
    root = _cluster_dir(first)
    port = int(first.split("port ")[1].split(",")[0])
    assert f"SELECT 1 -> 1 | origin: throwaway cluster in {root}, port {port}" in done.stdout
    assert "stopped and removed" in done.stderr
    _assert_gone(root, port)


def test_sigterm_stops_the_command_and_removes_the_cluster() -> None:
    proc = subprocess.Popen([sys.executable, str(WRAPPER), "--", sys.executable, "-c", PROBE,
                             "120"], env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stderr.readline()
        answered = proc.stdout.readline()  # the command is connected and now sleeping
        assert "SELECT 1 -> 1" in answered, (first, answered)
        root = _cluster_dir(first)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=90)
        rest = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 128 + signal.SIGTERM, rest  # the command died of the forwarded SIGTERM
    assert time.monotonic() - started < 60
    assert "stopped and removed" in rest
    _assert_gone(root, int(first.split("port ")[1].split(",")[0]))


def test_an_answering_server_is_used_as_it_is(tmp_path: Path) -> None:
    """No cluster when the URL answers: the first line says "already running"."""
    from tests.conftest import PG_ADMIN_URL, _pg_reachable

    if _pg_reachable() is not None:
        pytest.skip(f"no PostgreSQL answers at {PG_ADMIN_URL} to be used as it is")
    env = _env()
    env["POS_TEST_PG_URL"] = PG_ADMIN_URL
    done = subprocess.run([sys.executable, str(WRAPPER), "--", sys.executable, "-c",
                           "import os; print(os.environ['POS_TEST_PG_URL'])"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0].endswith("(already running)")
    assert done.stdout.strip() == PG_ADMIN_URL


def test_check_asks_for_the_binaries_only_when_nothing_answers(tmp_path: Path) -> None:
    """``packaging/dev`` installs Debian's postgresql when ``--check`` exits 3."""
    env = _env()
    env["POS_TEST_PG_BIN"] = str(tmp_path)  # no initdb there: as on a fresh machine
    missing = subprocess.run([sys.executable, str(WRAPPER), "--check"], env=env, timeout=60)
    assert missing.returncode == throwaway_postgres.NEEDS_BINARIES
    del env["POS_TEST_PG_BIN"]
    present = subprocess.run([sys.executable, str(WRAPPER), "--check"], env=env, timeout=60)
    assert present.returncode == 0
