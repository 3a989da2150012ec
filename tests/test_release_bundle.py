"""The PyInstaller one-folder till starts on a real X server (docs/install.md, "Artifacts").

packaging/pyinstaller/terminal.spec is built once into the test's tmp dir; the built program
(no Python of ours on the path: the bundle's own) runs under ``xvfb-run`` with
``--smoke-test`` and must paint the enroll screen through Qt's xcb platform plugin, load the
Arabic catalogue and the answer sounds, and exit 0 with no traceback. Its headless side runs
too: ``status --json`` (SQLite store) and ``enroll`` against a closed port (httpx; exit 3, the
spec's "server not reached"). The build takes 45 s to 2.5 min here, depending on load.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "packaging" / "pyinstaller" / "terminal.spec"
PYINSTALLER = Path(sys.executable).with_name("pyinstaller")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("x11"),  # xvfb-run -a picks a display number
    pytest.mark.skipif(not PYINSTALLER.exists(),
                       reason="pyinstaller missing: pip install -e '.[dev]' (packaging/dev does)"),
    pytest.mark.skipif(shutil.which("xvfb-run") is None,
                       reason="xvfb-run missing: apt-get install xvfb (packaging/dev does)"),
]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "VIRTUAL_ENV", "QT_QPA_PLATFORM")
            and not k.startswith("POS_")}


def test_one_folder_till_starts_under_xvfb_and_exits_cleanly(tmp_path: Path) -> None:
    subprocess.run([str(ROOT / "packaging" / "i18n"), "build"], check=True, cwd=ROOT,
                   timeout=120)
    t0 = time.monotonic()
    build = subprocess.run(
        [str(PYINSTALLER), "--noconfirm", "--log-level", "WARN", "--distpath",
         str(tmp_path / "dist"), "--workpath", str(tmp_path / "work"), str(SPEC)],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stderr[-3000:]
    built = time.monotonic() - t0

    folder = tmp_path / "dist" / "pos-terminal"
    program = folder / "pos-terminal"
    inside = folder / "_internal"
    for part in ("terminal/ui/translations/terminal_ar.qm", "terminal/ui/sounds/refused.wav",
                 "PySide6/Qt/plugins/platforms/libqxcb.so"):
        assert (inside / part).is_file(), f"the bundle lacks {part}"

    work = tmp_path / "run"
    work.mkdir()
    smoke = subprocess.run(
        ["xvfb-run", "-a", str(program), "--data-dir", str(work / "till"), "--smoke-test"],
        cwd=work, env=_env(), capture_output=True, text=True, timeout=180)
    assert "Traceback" not in smoke.stderr, smoke.stderr[-3000:]
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr[-3000:]
    shown = json.loads(smoke.stdout.strip().splitlines()[-1])
    assert shown["screen"] == "EnrollView", shown
    assert shown["platform"] == "xcb", shown  # a real X connection, not offscreen
    assert shown["title"] == "Cafeteria POS", shown
    assert shown["translations"] == {"ar": True}, shown
    assert shown["sounds"] == {"approved": True, "refused": True, "restricted": True}, shown

    status = subprocess.run([str(program), "--data-dir", str(work / "till"), "status",
                             "--json"], cwd=work, env=_env(), capture_output=True, text=True,
                            timeout=60)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["enrolled"] is False

    unreachable = subprocess.run(
        [str(program), "--data-dir", str(work / "till"), "enroll", "--server",
         f"http://127.0.0.1:{free_port()}", "--code", "NOPE-NOPE", "--name", "Counter 9"],
        cwd=work, env=_env(), capture_output=True, text=True, timeout=120)
    assert unreachable.returncode == 3, unreachable.stdout + unreachable.stderr
    assert "Traceback" not in unreachable.stderr, unreachable.stderr
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())
    print(f"\nPyInstaller build {built:.0f} s, {size >> 20} MB")
