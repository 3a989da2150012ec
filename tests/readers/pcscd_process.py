"""A pcscd owned by a test: started in the foreground as a child process, stopped by its PID."""

from __future__ import annotations

import subprocess
import time


class Pcscd:
    """A pcscd this test owns: started in the foreground as a child, stopped by its PID."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        from smartcard import scard

        self.process = subprocess.Popen(
            ["pcscd", "--foreground"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = (
                    self.process.stderr.read().decode(errors="replace")
                    if self.process.stderr
                    else ""
                )
                raise RuntimeError(f"pcscd exited at start: {err.strip()}")
            hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hresult == scard.SCARD_S_SUCCESS:
                _, readers = scard.SCardListReaders(context, [])
                scard.SCardReleaseContext(context)
                if any("Virtual PCD" in r for r in readers or []):
                    return
            time.sleep(0.02)
        raise RuntimeError("pcscd started but the vpcd virtual reader did not appear in 5 s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
