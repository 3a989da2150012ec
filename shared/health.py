"""Waiting for a sync server to answer ``/api/v1/health``: used by the demo launcher, the
benchmarks and the tests that start ``pos-server serve`` as a process."""

from __future__ import annotations

import subprocess
import time

import httpx


class ServerDidNotStart(RuntimeError):
    pass


def wait_until_healthy(url: str, *, timeout_s: float = 30.0,
                       process: subprocess.Popen[bytes] | subprocess.Popen[str] | None = None,
                       ) -> None:
    """Poll until the server answers 200; fail early if ``process`` exits meanwhile."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process is not None and process.poll() is not None:
            raise ServerDidNotStart(f"the server exited with code {process.returncode}")
        if time.monotonic() > deadline:
            raise ServerDidNotStart(f"no healthy answer from {url} within {timeout_s:.0f} s")
        time.sleep(0.2)
