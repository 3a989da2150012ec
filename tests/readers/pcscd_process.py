"""A pcscd owned by a test: started in the foreground as a child process, stopped by its PID."""

from __future__ import annotations

import subprocess
import tempfile
import time


class Pcscd:
    """A pcscd this test owns: started in the foreground as a child, stopped by its PID."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, attempts: int = 2) -> None:
        """Start pcscd and wait for vpcd's reader; one retry. A second failure raises with
        what pcscd said (vpcd's port taken by another socket shows as "Address already in
        use": see ``_reserve_vpcd_port`` in conftest.py)."""
        for attempt in range(1, attempts + 1):
            if self._start_once():
                return
            said = self._stop_and_collect()
            if attempt == attempts:
                raise RuntimeError("pcscd started but the vpcd virtual reader did not appear "
                                   f"in 5 s ({attempts} tries); pcscd said: {said[-800:]!r}")
            time.sleep(1.0)

    def _start_once(self) -> bool:
        from smartcard import scard

        # stderr to a file, not a pipe: nobody reads a pipe during a test, and a full one
        # would block pcscd mid-test.
        self._log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            ["pcscd", "--foreground"], stdout=subprocess.DEVNULL, stderr=self._log
        )
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pcscd exited at start: {self._said().strip()}")
            hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hresult == scard.SCARD_S_SUCCESS:
                _, readers = scard.SCardListReaders(context, [])
                scard.SCardReleaseContext(context)
                if any("Virtual PCD" in r for r in readers or []):
                    return True
            time.sleep(0.02)
        return False

    def _stop_and_collect(self) -> str:
        self.stop()
        return self._said()

    def _said(self) -> str:
        log = getattr(self, "_log", None)
        if log is None:
            return ""
        log.seek(0)
        return str(log.read().decode(errors="replace"))

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
