"""``pos-server serve`` as its own process, for tests that need the real listener."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shared.health import wait_until_healthy
from tests.conftest import WEBHOOK_SECRET, free_port


@dataclass
class Served:
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Ran:
    """What a command printed and returned, like ``subprocess.CompletedProcess``."""

    returncode: int
    stdout: str
    stderr: str


@contextmanager
def serve(db_url: str, workdir: Path, *, env: dict[str, str] | None = None,
          open_files: int | None = None, port: int | None = None) -> Iterator[Served]:
    """Serve ``db_url`` on ``port`` (default: a free one) until the block ends (SIGTERM, then
    SIGKILL after 30 s). ``open_files`` sets the process's RLIMIT_NOFILE (soft and hard)."""
    port = port or free_port()
    log = workdir / f"server-{port}.log"

    def limit() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sync_server", "serve", "--db", db_url, "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, preexec_fn=limit,
            env={**os.environ, "POS_WEBHOOK_SECRET": WEBHOOK_SECRET, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process=process)
        yield Served(url, log, process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
