"""Running the real ``pos-terminal`` / ``pos-server`` programs as subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def pos_terminal(data_dir: Path, *args: str,
                 timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "POS_TERMINAL_DIR": str(data_dir)}
    return subprocess.run([str(BIN / "pos-terminal"), *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=ROOT, check=False)


def pos_terminal_json(data_dir: Path, *args: str) -> tuple[int, Any]:
    done = pos_terminal(data_dir, *args, "--json")
    assert done.stdout.strip() or done.returncode != 0, done.stderr
    try:
        doc = json.loads(done.stdout) if done.stdout.strip() else None
    except json.JSONDecodeError:
        raise AssertionError(f"not JSON: {done.stdout!r} / {done.stderr!r}") from None
    if doc is None:
        doc = {"stderr": done.stderr}
    return done.returncode, doc


def audit_ledger(db_url: str) -> dict[str, Any]:
    done = subprocess.run([str(BIN / "pos-server"), "audit-ledger", "--db", db_url, "--json"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert done.returncode in (0, 1), done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result
