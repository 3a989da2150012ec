"""PostgreSQL for one test run: the server at ``POS_TEST_PG_URL`` when it answers, otherwise a
throwaway cluster in a temporary directory that lives exactly as long as the command it wraps.

``packaging/dev test`` runs pytest through this wrapper, so no PostgreSQL test skips on a fresh
Debian 12 machine (``packaging/dev`` installs Debian's ``postgresql`` first when neither a
server nor the binaries are there). It is a wrapper process rather than a pytest fixture
because the URL must be in the environment before pytest imports ``tests/conftest.py``, and
every ``pos-server`` a test starts as a subprocess inherits it from there; and because one
``finally`` here removes the cluster whether the run passes, fails, is interrupted with Ctrl-C
or is sent SIGTERM.

    python packaging/throwaway_postgres.py --check        # exit 3: no server and no binaries
    python packaging/throwaway_postgres.py -- COMMAND...  # COMMAND with POS_TEST_PG_URL set

The first line printed says which database the run uses. The cluster runs as the ``postgres``
OS user when started by root (PostgreSQL refuses to run as root), with trust authentication on
127.0.0.1 only, a free port, its socket in its own directory, and fsync off: it holds nothing
that must survive the run. Never the shared server: the wrapper only ever stops what it started.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
NEEDS_BINARIES = 3
PREFIX = "packaging/dev: PostgreSQL:"


def say(line: str) -> None:
    print(f"{PREFIX} {line}", file=sys.stderr, flush=True)


def shown(url: str) -> str:
    """The URL without a password, for printing."""
    return re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", url)


def answers(url: str, timeout: float = 5) -> str | None:
    """None when ``SELECT 1`` works at ``url``, else why not (in plain words)."""
    try:
        import asyncpg
    except ImportError:
        return "asyncpg is not installed"

    async def probe() -> None:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"),
                                     timeout=timeout)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    return None


def binaries() -> Path | None:
    """Debian's PostgreSQL binaries (the newest major version), or ``POS_TEST_PG_BIN``."""
    given = os.environ.get("POS_TEST_PG_BIN")
    if given:
        return Path(given) if (Path(given) / "initdb").exists() else None
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    if not found:
        return None
    return max(found, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """initdb + pg_ctl in a temporary directory; ``remove()`` stops it and deletes the files."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user is not None:
            try:
                pwd.getpwnam(self.user)
            except KeyError:
                raise RuntimeError("no postgres OS user to run the cluster as "
                                   "(apt-get install postgresql creates it)") from None
        self.root = Path(tempfile.mkdtemp(prefix="pos-test-pg-"))
        if self.user is not None:
            shutil.chown(self.root, self.user)
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        return subprocess.run([*prefix, *args], capture_output=True, text=True,
                              timeout=timeout, check=False, cwd=self.root)

    def start(self) -> None:
        done = self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                         "--auth=trust", "-N", "-E", "UTF8", "--locale=C")
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {(done.stderr or done.stdout).strip()[-500:]}")
        # max_connections: a serial run fits in the usual 100 (the shared servers these tests
        # ran against); packaging/dev test runs two pytest processes, plus headroom.
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=300")
        done = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
                         "-l", str(self.root / "log"), "-w", "-t", "60", "start")
        if done.returncode != 0:
            log = (self.root / "log").read_text(errors="replace")[-500:] \
                if (self.root / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr.strip()[-300:]} {log}")

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def remove(self) -> None:
        """Stop (fast, then immediate, then SIGKILL to the postmaster) and delete the files."""
        pid = self.postmaster_pid()
        if pid is not None:
            for mode in ("fast", "immediate"):
                done = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode,
                                 "-w", "-t", "30", "stop", timeout=60)
                if done.returncode == 0:
                    break
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(self.root, ignore_errors=True)


def run(command: list[str]) -> int:
    """Run ``command`` with a PostgreSQL answering at ``POS_TEST_PG_URL``; its exit code."""
    url = os.environ.get("POS_TEST_PG_URL", DEFAULT_URL)
    env = dict(os.environ)
    cluster: Cluster | None = None
    why = answers(url)
    if why is None:
        say(f"{shown(url)} (already running)")
        env["POS_TEST_PG_ORIGIN"] = "already running"
    else:
        bin_dir = binaries()
        if bin_dir is None:
            say(f"nothing answers at {shown(url)} ({why}) and no PostgreSQL binaries are "
                "installed (apt-get install postgresql); PostgreSQL tests will skip")
        else:
            try:
                cluster = Cluster(bin_dir)
                started = time.monotonic()
                cluster.start()
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                if cluster is not None:
                    cluster.remove()
                say(f"nothing answers at {shown(url)} and a throwaway cluster did not start "
                    f"({exc}); PostgreSQL tests will skip")
                cluster = None
            else:
                origin = f"throwaway cluster in {cluster.root}, port {cluster.port}"
                say(f"{cluster.url} ({origin}, started in {time.monotonic() - started:.1f} s; "
                    f"nothing answered at {shown(url)}); removed at exit")
                env.update(POS_TEST_PG_URL=cluster.url, POS_TEST_PG_ORIGIN=origin,
                           POS_TEST_PG_BIN=str(bin_dir))
    try:
        return _child(command, env)
    finally:
        if cluster is not None:
            cluster.remove()
            say(f"throwaway cluster on port {cluster.port} stopped and removed")


def _child(command: list[str], env: dict[str, str]) -> int:
    """Run the command; SIGTERM/SIGHUP are passed on to it. Ctrl-C already reaches it (same
    process group), so a second copy is not sent: pytest would take it as "abort now"."""
    child = subprocess.Popen(command, env=env)

    def forward(signum: int, _frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGHUP, forward)
    signal.signal(signal.SIGINT, lambda _s, _f: None)
    code = child.wait()
    return code if code >= 0 else 128 - code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help=f"exit {NEEDS_BINARIES} when nothing answers at POS_TEST_PG_URL "
                             "and no PostgreSQL binaries are installed, else 0")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)
    if args.check:
        url = os.environ.get("POS_TEST_PG_URL", DEFAULT_URL)
        return 0 if binaries() is not None or answers(url) is None else NEEDS_BINARIES
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    return run(command)


if __name__ == "__main__":
    sys.exit(main())
