"""The wheel a school installs works on its own (docs/install.md, "Artifacts").

``python -m build`` makes the sdist and then the wheel from the unpacked sdist, so a file the
sdist forgets fails here too. The wheel goes into a fresh, plain venv in the test's tmp dir
(no system site-packages to hide a missing dependency; pip takes the dependencies from PyPI or
its cache), and the programs of that venv run from a directory outside the checkout:
``pos-server migrate``, ``pos-server serve`` until ``/api/v1/health`` answers,
``pos-terminal --help`` and ``pos-terminal --smoke-test`` (the installed till finds its
compiled translations and sounds). About a minute here, most of it pip installing PySide6.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("build", reason="the build package is missing: pip install -e '.[dev]' "
                    "(packaging/dev does)")


def _build(outdir: Path) -> Path:
    # The compiled translations are build output: compile them as packaging/build-release does
    # (a no-op when they are already newer than their sources).
    subprocess.run([str(ROOT / "packaging" / "i18n"), "build"], check=True, cwd=ROOT,
                   timeout=120)
    # --no-isolation: the dev extra already holds setuptools>=77, and an isolated build would
    # download it twice more (the release script builds isolated).
    build = subprocess.run([sys.executable, "-m", "build", "-q", "--no-isolation", "--outdir",
                            str(outdir), str(ROOT)], cwd=ROOT, timeout=180,
                           capture_output=True, text=True)
    assert build.returncode == 0, (build.stdout + build.stderr)[-3000:]
    wheels = list(outdir.glob("cafeteria_pos-*-py3-none-any.whl"))
    assert len(wheels) == 1, sorted(p.name for p in outdir.iterdir())
    sdists = list(outdir.glob("cafeteria_pos-*.tar.gz"))
    assert len(sdists) == 1, "no sdist"
    # what an installer needs beside the wheel (docs/install.md)
    with tarfile.open(sdists[0]) as sdist:
        inside = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for path in ("packaging/install-server", "packaging/install-terminal",
                 "packaging/install-lib.sh", "packaging/systemd/pos-server.service",
                 "packaging/systemd/server.env.example", "packaging/kiosk/pos-terminal.desktop",
                 "packaging/udev/99-pos-nfc.rules", "packaging/modprobe/blacklist-pos-nfc.conf",
                 "packaging/pyinstaller/terminal.spec", "docs/install.md"):
        assert path in inside, f"the sdist lacks {path}"
    return wheels[0]


def _clean_env(**extra: str) -> dict[str, str]:
    """No PYTHONPATH or venv of the checkout: only what the fresh venv installed counts."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("POS_")}
    env.update(extra)
    return env


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_and_runs(tmp_path: Path) -> None:
    t0 = time.monotonic()
    wheel = _build(tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    wanted = {
        "template": "sync_server/admin/templates/dashboard.html",
        "static": "sync_server/admin/static/admin.css",
        "migration": "sync_server/storage/migrations/versions/0001_initial_schema.py",
        "migrations env": "sync_server/storage/migrations/env.py",
        "till translation": "terminal/ui/translations/terminal_ar.qm",
        "sound": "terminal/ui/sounds/approved.wav",
        "console catalog": "sync_server/admin/translations/ar/LC_MESSAGES/messages.po",
    }
    missing = {what: path for what, path in wanted.items() if path not in names}
    assert not missing, f"the wheel lacks {missing}"
    built = time.monotonic()

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    bin_ = venv / "bin"
    pip = subprocess.run(
        [str(bin_ / "pip"), "install", "-q", "--no-compile", "--disable-pip-version-check",
         str(wheel)], cwd=tmp_path, env=_clean_env(), capture_output=True, text=True,
        timeout=600)
    assert pip.returncode == 0, pip.stderr[-3000:]
    installed = time.monotonic()

    work = tmp_path / "run"
    work.mkdir()
    env = _clean_env(QT_QPA_PLATFORM="offscreen")
    where = subprocess.run(
        [str(bin_ / "python"), "-c",
         "import sync_server, terminal; print(sync_server.__file__); print(terminal.__file__)"],
        cwd=work, env=env, capture_output=True, text=True, check=True, timeout=60)
    for line in where.stdout.split():
        assert line.startswith(str(venv)), f"imported from outside the venv: {line}"

    db = f"sqlite:///{work / 'x.db'}"
    migrate = subprocess.run([str(bin_ / "pos-server"), "migrate", "--db", db, "--json"],
                             cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert migrate.returncode == 0, migrate.stderr
    revision = json.loads(migrate.stdout)["revision"]
    assert revision.startswith("00"), revision

    port = free_port()
    server = subprocess.Popen([str(bin_ / "pos-server"), "serve", "--db", db, "--port",
                               str(port)], cwd=work, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        health = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health",
                                            timeout=5) as answer:
                    health = (answer.status, json.loads(answer.read()))
                    break
            except OSError:
                time.sleep(0.3)
        assert health is not None, "the installed server never answered /api/v1/health"
        assert health[0] == 200, health
    finally:
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=60)
    assert server.returncode == 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]

    helped = subprocess.run([str(bin_ / "pos-terminal"), "--help"], cwd=work, env=env,
                            capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0, helped.stderr
    assert "enroll" in helped.stdout and "--smoke-test" in helped.stdout

    smoke = subprocess.run([str(bin_ / "pos-terminal"), "--data-dir", str(work / "till"),
                            "--smoke-test"], cwd=work, env=env, capture_output=True,
                           text=True, timeout=120)
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    shown = json.loads(smoke.stdout.strip().splitlines()[-1])
    assert shown["screen"] == "EnrollView", shown
    assert shown["translations"] == {"ar": True} and all(shown["sounds"].values()), shown
    print(f"\nwheel: build {built - t0:.0f} s, venv + pip install {installed - built:.0f} s, "
          f"run {time.monotonic() - installed:.0f} s")
