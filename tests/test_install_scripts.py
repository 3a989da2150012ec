"""packaging/install-server and packaging/install-terminal, run with --dry-run (docs/install.md).

The platform comes from files the test writes (POS_INSTALL_OS_RELEASE, POS_INSTALL_RPI_ISSUE)
and POS_INSTALL_ARCH: Debian 12 on amd64 and Raspberry Pi OS 13 on arm64 are installed;
Ubuntu, 32-bit Raspberry Pi OS and arm64 Debian 12 (no PySide6 wheel for its glibc) are
refused with exit 2. The dry run must list every user, directory, Debian package, systemd unit,
udev rule and kiosk file, one "would: ..." line each, and change nothing: the commands that
change a machine are put first on PATH as recorders that fail, and the paths an install
creates are compared before and after.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEBIAN_12 = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
# 64-bit Raspberry Pi OS ships Debian's os-release; /etc/rpi-issue tells it apart
DEBIAN_13 = 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nID=debian\nVERSION_ID="13"\n'
RASPBIAN_12 = 'PRETTY_NAME="Raspbian GNU/Linux 12 (bookworm)"\nID=raspbian\nVERSION_ID="12"\n'
UBUNTU = 'PRETTY_NAME="Ubuntu 24.04 LTS"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\n'
CHANGING = ("apt-get", "useradd", "usermod", "install", "systemctl", "udevadm", "createuser",
            "createdb", "chown", "chmod", "mv", "mkdir", "pip", "pip3")
WATCHED = ("/etc/systemd/system/pos-server.service", "/etc/systemd/system/pos-backup.service",
           "/etc/systemd/system/pos-backup.timer", "/etc/pos", "/opt/pos", "/var/lib/pos",
           "/var/backups/pos", "/etc/udev/rules.d/99-pos-nfc.rules",
           "/etc/modprobe.d/blacklist-pos-nfc.conf", "/home/pos",
           "/etc/lightdm/lightdm.conf.d/50-cafeteria-pos.conf")


def _state() -> dict[str, object]:
    seen: dict[str, object] = {p: os.path.exists(p) for p in WATCHED}
    passwd = Path("/etc/passwd")
    seen["/etc/passwd"] = (passwd.stat().st_mtime_ns, passwd.read_bytes())
    return seen


def _run(tmp_path: Path, script: str, os_release: str, arch: str, *, rpi: bool = False,
         args: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    shims = tmp_path / "shims"
    log = tmp_path / "changed.log"
    if not shims.exists():
        shims.mkdir()
        for name in CHANGING:
            shim = shims / name
            shim.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\nexit 1\n')
            shim.chmod(0o755)
    release = tmp_path / "os-release"
    release.write_text(os_release)
    rpi_issue = tmp_path / "rpi-issue"
    if rpi:
        rpi_issue.write_text("Raspberry Pi reference 2025-10-01\n")
    elif rpi_issue.exists():
        rpi_issue.unlink()
    wheel = tmp_path / "cafeteria_pos-9.8.7-py3-none-any.whl"
    wheel.write_bytes(b"")
    env = dict(os.environ, PATH=f"{shims}:{os.environ['PATH']}",
               POS_INSTALL_OS_RELEASE=str(release), POS_INSTALL_RPI_ISSUE=str(rpi_issue),
               POS_INSTALL_ARCH=arch)
    before = _state()
    done = subprocess.run([str(ROOT / "packaging" / script), "--dry-run", "--wheel", str(wheel),
                           *args], env=env, capture_output=True, text=True, timeout=60)
    assert _state() == before, "the dry run changed the machine"
    assert not log.exists(), f"the dry run ran: {log.read_text()}"
    return done


def _lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines and all(line.startswith(("would: ", "skip: ")) for line in lines), lines
    return lines


def _one(lines: list[str], *words: str) -> str:
    found = [line for line in lines if all(word in line for word in words)]
    assert len(found) == 1, (words, lines)
    return found[0]


def _user_line(lines: list[str], user_exists: bool) -> None:
    if user_exists:
        _one(lines, "skip: user pos exists")
    else:
        _one(lines, "would: useradd", " pos")


def _pos_exists() -> bool:
    return subprocess.run(["id", "pos"], capture_output=True).returncode == 0


@pytest.mark.parametrize(("os_release", "arch", "rpi", "named"), [
    (DEBIAN_12, "amd64", False, "Debian 12 (amd64)"),
    (DEBIAN_13, "arm64", True, "Raspberry Pi OS 13 (arm64)"),
])
def test_server_dry_run_lists_every_change(tmp_path: Path, os_release: str, arch: str,
                                           rpi: bool, named: str) -> None:
    done = _run(tmp_path, "install-server", os_release, arch, rpi=rpi)
    lines = _lines(done)
    assert f"installing on {named}" in done.stderr
    assert "dry run: nothing was changed" in done.stderr
    packages = _one(lines, "would: env DEBIAN_FRONTEND=noninteractive apt-get install -y")
    assert {"python3-venv", "postgresql", "fonts-noto-core"} <= set(packages.split())
    _user_line(lines, _pos_exists())
    _one(lines, "would: install -d -m 0750 -o pos -g pos /var/lib/pos")
    _one(lines, "would: install -d -m 0750 -o pos -g pos /var/backups/pos")
    _one(lines, "would: install -d -m 0750 -o root -g pos /etc/pos")
    _one(lines, "pip install", str(tmp_path / "cafeteria_pos-9.8.7-py3-none-any.whl"))
    env_file = _one(lines, "/etc/pos/server.env")
    assert "mode 0640, root:pos" in env_file and "POS_DB_URL=postgresql://" in env_file
    for unit in ("pos-server.service", "pos-backup.service", "pos-backup.timer"):
        _one(lines, "would: install -D -m 0644", f"packaging/systemd/{unit}",
             f"/etc/systemd/system/{unit}")
    _one(lines, "would: systemctl enable pos-server.service pos-backup.timer")
    _one(lines, "would: systemctl restart pos-server.service")


def test_server_dry_run_on_sqlite_needs_no_postgresql(tmp_path: Path) -> None:
    lines = _lines(_run(tmp_path, "install-server", DEBIAN_12, "amd64",
                        args=("--database", "sqlite")))
    assert "postgresql" not in _one(lines, "apt-get install").split()
    assert not [line for line in lines if "createdb" in line or "createuser" in line]
    assert "POS_DB_URL=sqlite:////var/lib/pos/pos-server.db" in _one(lines, "server.env")


@pytest.mark.parametrize(("os_release", "arch", "rpi", "named"), [
    (DEBIAN_12, "amd64", False, "Debian 12 (amd64)"),
    (DEBIAN_13, "arm64", True, "Raspberry Pi OS 13 (arm64)"),
])
def test_terminal_dry_run_lists_every_change(tmp_path: Path, os_release: str, arch: str,
                                             rpi: bool, named: str) -> None:
    done = _run(tmp_path, "install-terminal", os_release, arch, rpi=rpi)
    lines = _lines(done)
    assert f"installing on {named}" in done.stderr
    packages = set(_one(lines, "apt-get install -y").split())
    assert {"pcscd", "libccid", "fonts-noto-core", "alsa-utils", "python3-venv",
            "libxcb-cursor0", "libpcsclite-dev", "swig"} <= packages
    _user_line(lines, _pos_exists())
    _one(lines, "would: install -d -m 0700 -o pos -g pos /var/lib/pos/terminal")
    _one(lines, "would: install -d -m 0750 -o root -g pos /etc/pos")
    assert "POS_READER=pcsc" in _one(lines, "/etc/pos/terminal.env", "mode 0640, root:pos")
    assert _one(lines, "pip install").endswith(".whl[pcsc]")  # pyscard for the PC/SC reader
    _one(lines, "packaging/udev/99-pos-nfc.rules", "/etc/udev/rules.d/99-pos-nfc.rules")
    _one(lines, "packaging/modprobe/blacklist-pos-nfc.conf",
         "/etc/modprobe.d/blacklist-pos-nfc.conf")
    _one(lines, "would: udevadm control --reload")
    _one(lines, "would: systemctl enable --now pcscd.socket")
    _one(lines, "-o pos -g pos", "packaging/kiosk/pos-terminal.desktop",
         "/home/pos/.config/autostart/pos-terminal.desktop")
    assert "autologin-user=pos" in _one(lines, "/etc/lightdm/lightdm.conf.d/")
    _one(lines, "pos-terminal --smoke-test")


def test_terminal_dry_run_for_an_nfc_reader_builds_no_pyscard(tmp_path: Path) -> None:
    lines = _lines(_run(tmp_path, "install-terminal", DEBIAN_12, "amd64",
                        args=("--reader", "nfc")))
    assert "swig" not in _one(lines, "apt-get install -y").split()
    assert _one(lines, "pip install").endswith(".whl")
    assert "POS_READER=nfc" in _one(lines, "terminal.env")


@pytest.mark.parametrize("script", ["install-server", "install-terminal"])
@pytest.mark.parametrize(("os_release", "arch", "rpi", "says"), [
    (UBUNTU, "amd64", False, "unsupported system: Ubuntu 24.04"),
    (RASPBIAN_12, "armhf", True, "unsupported architecture armhf"),
    (DEBIAN_12, "arm64", True, "glibc 2.39"),
    (DEBIAN_12, "i386", False, "unsupported architecture i386"),
])
def test_unsupported_platforms_are_refused(tmp_path: Path, script: str, os_release: str,
                                           arch: str, rpi: bool, says: str) -> None:
    done = _run(tmp_path, script, os_release, arch, rpi=rpi)
    assert done.returncode == 2, done.stdout + done.stderr
    assert says in done.stderr
    assert done.stdout == ""  # refused before any step


def test_unknown_options_are_usage_errors(tmp_path: Path) -> None:
    done = _run(tmp_path, "install-terminal", DEBIAN_12, "amd64", args=("--reader", "magic"))
    assert done.returncode == 2 and "--reader must be" in done.stderr
    done = _run(tmp_path, "install-server", DEBIAN_12, "amd64", args=("--frobnicate",))
    assert done.returncode == 2 and "unknown option --frobnicate" in done.stderr
