"""``packaging/dev demo`` (packaging/demo.py) as a person runs it, headless, in subprocesses.

One first run serves the demo: health answers, two weeks of history are in the ledger and
``audit-ledger`` is clean, and the printed top-up command credits the wallet through the signed
webhook (once, when run twice with the same reference). SIGTERM stops the server and leaves no
process behind, with exit 0. A second run on another port enrolls the terminal again with the
new URL. A taken port ends the demo at once with exit 1 and a sentence saying so.
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import httpx

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "packaging" / "demo.py"
BIN = Path(sys.executable).parent
READY = "Ctrl-C stops the demo."


class Demo:
    def __init__(self, directory: Path, port: int) -> None:
        self.dir, self.port = directory, port
        self.out = directory.parent / f"demo-{port}.out"
        self.err = directory.parent / f"demo-{port}.err"
        with self.out.open("w") as out, self.err.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(DEMO), "--headless", "--dir", str(directory),
                 "--port", str(port)], stdout=out, stderr=err)

    def wait_ready(self, timeout: float = 240) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            said = self.out.read_text()
            if READY in said:
                return said
            assert self.proc.poll() is None, f"demo exited: {said}\n{self.err.read_text()[-2000:]}"
            time.sleep(0.3)
        raise AssertionError(f"demo not ready in {timeout} s: {self.out.read_text()}")

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=40)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def _balance(directory: Path, wallet_id: str) -> int:
    with sqlite3.connect(directory / "pos-server.db") as db:
        return int(db.execute("SELECT balance FROM wallets WHERE wallet_id = ?",
                              (wallet_id,)).fetchone()[0])


def _dashboard_bars(url: str, directory: Path) -> int:
    """Days with sales on the dashboard's 14-day chart, signed in as the demo's school admin
    through the real login form (today has none, so every non-empty bar is a past day)."""
    admin = json.loads((directory / "demo.json").read_text())["schools"][0]["admin"]
    with httpx.Client(base_url=url, timeout=15) as web:
        token = re.search(r'name="csrf_token" value="([^"]+)"', web.get("/admin/login").text)
        assert token
        signed_in = web.post("/admin/login", data={"email": admin["email"], "next": "",
                                                   "password": admin["password"],
                                                   "csrf_token": token.group(1)})
        assert signed_in.status_code == 303, signed_in.text[:500]
        page = web.get("/admin/").text
    heights = re.findall(r'<rect class="bar"[^>]*height="([0-9.]+)"', page)
    return sum(1 for h in heights if float(h) > 0)


def _leftovers(directory: Path) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines() if str(directory) in line]


def test_demo_runs_tops_up_stops_and_re_enrolls(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    first = Demo(directory, free_port())
    try:
        said = first.wait_ready()
        url = f"http://127.0.0.1:{first.port}"
        assert httpx.get(f"{url}/api/v1/health", timeout=5).json()["status"] == "ok"

        # Two weeks of history, through the ledger: sales on past days, and a clean audit.
        with sqlite3.connect(directory / "pos-server.db") as db:
            days = dict(db.execute(
                "SELECT business_day, COUNT(*) FROM sales WHERE status = 'applied' "
                "AND business_day >= ? GROUP BY business_day",
                ((date.today() - timedelta(days=15)).isoformat(),)).fetchall())
        assert len(days) >= 8 and sum(days.values()) > 100, days
        assert "sales over the past 14 days" in said
        assert _dashboard_bars(url, directory) >= 8  # the school admin sees them
        audit = subprocess.run([str(BIN / "pos-server"), "audit-ledger", "--db",
                                f"sqlite:///{directory / 'pos-server.db'}", "--json"],
                               capture_output=True, text=True, timeout=60)
        assert json.loads(audit.stdout)["ok"], audit.stdout

        # The printed top-up command credits the wallet once per reference.
        line = next(x.strip() for x in said.splitlines() if "packaging/topup.py" in x)
        command = shlex.split(line)
        wallet_id = command[command.index("--wallet") + 1]
        assert "--secret-file" in command and "20.00" in command
        before = _balance(directory, wallet_id)
        runs = [subprocess.run([*command, "--reference", "pay-test-1", "--json"],
                               capture_output=True, text=True, timeout=30) for _ in range(2)]
        assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
        answers = [json.loads(r.stdout) for r in runs]
        assert answers[0]["status"] == "credited"
        assert answers[0]["balance_after"] == before + 2000
        assert answers[1]["status"] == "recorded"  # the same payment again: no money moved
        assert _balance(directory, wallet_id) == before + 2000
        assert "webhook-secret" in line and (directory / "webhook-secret").stat().st_mode \
            & 0o077 == 0
    finally:
        code = first.terminate()
    # SIGTERM stops everything it started, exit 0, nothing left running.
    assert code == 0, first.err.read_text()[-2000:]
    time.sleep(0.5)
    assert _leftovers(directory) == []

    # Another port: the terminal is enrolled again with the URL now served.
    second = Demo(directory, free_port())
    try:
        said = second.wait_ready()
        assert "enrolling it again" in said
        status = json.loads(subprocess.run(
            [str(BIN / "pos-terminal"), "--data-dir", str(directory / "terminal"), "status",
             "--json"], capture_output=True, text=True, timeout=30).stdout)
        assert status["server_url"] == f"http://127.0.0.1:{second.port}"
        assert len(list(directory.glob("terminal.before-*"))) == 1  # kept, not deleted
    finally:
        assert second.terminate() == 0
    time.sleep(0.5)
    assert _leftovers(directory) == []


def test_a_taken_port_exits_non_zero_with_a_message(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = subprocess.run([sys.executable, str(DEMO), "--headless", "--dir",
                               str(tmp_path / "demo"), "--port", str(port)],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"port {port} is taken" in done.stderr
    assert not (tmp_path / "demo").exists()  # it changed nothing
