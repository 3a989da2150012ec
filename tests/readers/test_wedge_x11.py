"""The wedge reader with real X11 key events: Xvfb, a real window, keys typed by xdotool.

This is where one key event reaches the application-wide filter several times (window,
focused widget, parents), which pytest-qt's keyClicks cannot show. Needs the Debian packages
xvfb and xdotool (and Qt's xcb libraries); skips saying so when they are missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = Path(__file__).with_name("wedge_x11_app.py")
pytestmark = pytest.mark.xdist_group("x11")  # one Xvfb per module; xvfb-run -a elsewhere


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    for tool, package in (("Xvfb", "xvfb"), ("xdotool", "xdotool")):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed; `apt-get install {package}` to run this test")
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    if not number:
        server.kill()
        pytest.skip("Xvfb did not start (no display number reported)")
    try:
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=5)


class X11App:
    def __init__(self, display: str) -> None:
        env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb", PYTHONPATH=str(ROOT))
        self.env = env
        self.process = subprocess.Popen(
            [sys.executable, str(APP)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )

    def expect(self, word: str) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith(word):
            err = self.process.stderr.read() if self.process.poll() is not None else ""
            if "xcb" in err and "platform plugin" in err:
                pytest.skip(f"Qt cannot open an X11 window here: {err.strip().splitlines()[-1]}")
            raise AssertionError(f"expected {word}, got {line!r}; stderr: {err}")
        return line

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def dump(self) -> dict[str, Any]:
        self.send("dump")
        return dict(json.loads(self.expect("{")))

    def xdotool(self, *args: str) -> None:
        subprocess.run(["xdotool", *args], env=self.env, check=True, timeout=30)

    def close(self) -> None:
        if self.process.poll() is None:
            self.send("quit")
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def x11_app(display: str) -> Iterator[X11App]:
    app = X11App(display)
    try:
        app.expect("READY")
        yield app
    finally:
        app.close()


def test_real_key_events_scan_and_human_typing(x11_app: X11App) -> None:
    # A reader: upper-case hex (xdotool presses Shift for A-F), 5 ms apart, then Enter.
    # ("key" takes keysyms; "type" would take "Return" as text and its "\n" is no Return.)
    x11_app.xdotool("key", "--delay", "5", *"04A1B2C3D4E580", "Return")
    # A person: hex characters too, 150 ms apart; they must appear once each, in order.
    x11_app.xdotool("key", "--delay", "150", *"deadbeef", "Return")
    seen = x11_app.dump()
    assert seen["taps"] == ["04A1B2C3D4E580"]
    assert seen["text"] == "deadbeef"
    assert seen["entered"] == ["deadbeef"]


def test_real_key_events_many_scans_in_a_row(x11_app: X11App) -> None:
    uids = ["04A1B2C3D4E580", "04112233445566", "DEADBEEF", "0A0B0C0D"]
    for uid in uids:
        x11_app.xdotool("key", "--delay", "8", *uid, "Return")
    seen = x11_app.dump()
    assert seen["taps"] == uids
    assert seen["text"] == ""
    assert seen["entered"] == []
