"""A PostgreSQL cluster of the test's own, to crash and restart (never the shared one at 5432).

``initdb`` into a temporary directory and ``pg_ctl`` on a free port, run as the ``postgres``
OS user (PostgreSQL refuses to run as root), with fsync off: it only lives for a test.
``crash()`` is ``pg_ctl -m immediate stop``; ``start(standby=True)`` starts it as a standby
with hot standby off, so it stays in recovery and refuses connections ("the database system
is starting up"), as a server recovering from a crash or restoring a backup does.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.conftest import free_port

PG_BIN = Path(os.environ.get("POS_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def unavailable_reason() -> str | None:
    """Why a throwaway cluster cannot run here, or None."""
    if not (PG_BIN / "initdb").exists():
        return (f"no PostgreSQL binaries in {PG_BIN}: apt-get install postgresql, or set "
                "POS_TEST_PG_BIN to their directory")
    if os.geteuid() != 0:
        return "runs PostgreSQL as the postgres OS user, which needs root (runuser)"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres OS user (apt-get install postgresql creates it)"
    return None


class Cluster:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pos-test-pg-"))
        shutil.chown(self.root, "postgres")
        self.data = self.root / "data"
        self.port = free_port()
        self.running = False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _pg(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True,
                              text=True, timeout=timeout, check=True)

    def init(self) -> None:
        self._pg(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                 "--auth=trust", "-N")

    def start(self, *, standby: bool = False) -> None:
        signal_file = self.data / "standby.signal"
        if standby:
            signal_file.touch()
            shutil.chown(signal_file, "postgres")
        else:
            signal_file.unlink(missing_ok=True)
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c hot_standby=off")
        # A standby with hot standby off never becomes ready: do not wait for it.
        self._pg(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options,
                 "-l", str(self.root / "log"), "start", "-W" if standby else "-w")
        self.running = True
        if standby:
            self._wait_until_rejecting()

    def _wait_until_rejecting(self, timeout: float = 20) -> None:
        """pg_isready exits 1 while the server is up but refuses connections."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = subprocess.run([str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p",
                                   str(self.port)], capture_output=True, timeout=10)
            if done.returncode == 1:
                return
            time.sleep(0.05)
        raise AssertionError("the standby did not come up in recovery")

    def crash(self) -> None:
        self._pg(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        self.running = False

    def stop(self) -> None:
        self._pg(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")
        self.running = False

    def destroy(self) -> None:
        try:
            if self.running:
                self.crash()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
