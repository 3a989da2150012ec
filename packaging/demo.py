"""The README's run command: a sync server with demo data, and a terminal enrolled to it.

First run: migrates ``var/demo/pos-server.db``, seeds two demo schools with the past 14 days of
sales (pushed through the ledger as a till would: the dashboard and reports have something to
show) and keeps the seed output (codes, PINs, passwords) in ``var/demo/demo.json``; later runs
reuse them. A webhook secret is made once (``var/demo/webhook-secret``) and given to the server,
so ``packaging/topup.py`` can simulate a parent's top-up through the real signed webhook; the
command is printed ready to paste. Then it serves on http://127.0.0.1:8080 (``--port``),
enrolls the terminal in ``var/demo/terminal`` (again, when the terminal was enrolled with
another server URL: the old directory is kept beside it, nothing in it is deleted) and opens
the cashier app with the simulated reader when the app is installed (``--headless`` skips it).

Ctrl-C or SIGTERM stops everything it started and exits 0. It exits 1 with one line on stderr
when the server cannot start (the port is taken, the database is unusable) or stops on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from shared.health import ServerDidNotStart, wait_until_healthy

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HISTORY_DAYS = 14


class Stop(Exception):
    """SIGTERM or SIGHUP: leave the way Ctrl-C does."""


def _stop(_signum: int, _frame: FrameType | None) -> None:
    raise Stop


def say(line: str) -> None:
    print(f"demo: {line}", flush=True)


def run_json(*cmd: str) -> dict[str, Any]:
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"demo: {' '.join(Path(c).name for c in cmd[:2])} failed: {out.stderr.strip()}")
    return dict(json.loads(out.stdout))


def port_taken(port: int) -> bool:
    """Bound as the server binds (address reuse on), so a closed socket in TIME_WAIT does not
    count as taken, and anything listening does."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--dir", type=Path, default=ROOT / "var" / "demo")
    parser.add_argument("--headless", action="store_true", help="do not open the cashier app")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    if port_taken(args.port):
        sys.exit(f"demo: port {args.port} is taken (another program listens there); "
                 "stop it or choose another with --port")
    args.dir.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{args.dir / 'pos-server.db'}"
    seed_file = args.dir / "demo.json"
    server_cmd = [str(BIN / "pos-server")]
    terminal_dir = args.dir / "terminal"
    terminal_cmd = [str(BIN / "pos-terminal"), "--data-dir", str(terminal_dir)]
    url = f"http://127.0.0.1:{args.port}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if not seed_file.exists():
            say("first run: creating the demo database")
            run_json(*server_cmd, "migrate", "--db", db_url, "--json")
            say(f"seeding two demo schools and the past {HISTORY_DAYS} days of sales "
                "(about a minute)")
            demo = run_json(*server_cmd, "seed-demo", "--db", db_url, "--history-days",
                            str(HISTORY_DAYS), "--json")
            seed_file.write_text(json.dumps(demo, indent=2))
            os.chmod(seed_file, 0o600)
        demo = json.loads(seed_file.read_text())
        secret_file = _webhook_secret(args.dir)

        # The demo serves the console over plain HTTP on this machine: Secure cookies (the
        # server's default) would never come back, and signing in would fail.
        server = subprocess.Popen(
            [*server_cmd, "serve", "--db", db_url, "--port", str(args.port)],
            env={**os.environ, "POS_SECURE_COOKIES": "false",
                 "POS_WEBHOOK_SECRET": secret_file.read_text().strip()})
        procs.append(server)
        try:
            wait_until_healthy(url, process=server, timeout_s=60)
        except ServerDidNotStart as exc:
            sys.exit(f"demo: the server did not start: {exc} (is port {args.port} in use? "
                     "try --port)")

        _enroll(demo, url, server_cmd, terminal_cmd, terminal_dir, db_url)
        print_cheatsheet(demo, url, terminal_cmd, seed_file, secret_file)
        if not args.headless and _has_gui():
            procs.append(subprocess.Popen([*terminal_cmd, "--reader", "simulated"]))
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        if server.poll() is not None:
            sys.exit(f"demo: the server stopped on its own (exit code {server.returncode})")
        return 0  # the cashier app was closed
    except (KeyboardInterrupt, Stop):
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut cleanup
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _stop_all(procs)


def _stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _webhook_secret(directory: Path) -> Path:
    """The demo server's webhook secret, made once and readable by this user only."""
    path = directory / "webhook-secret"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    return path


def _enroll(demo: dict[str, Any], url: str, server_cmd: list[str], terminal_cmd: list[str],
            terminal_dir: Path, db_url: str) -> None:
    """Enroll the demo terminal, or enroll it again when it syncs with another server URL (the
    port changed, or it was enrolled elsewhere). The old directory is moved aside, never
    deleted: sales it still queues stay there."""
    school = demo["schools"][0]
    status = run_json(*terminal_cmd, "status", "--json")
    if status.get("enrolled") and status.get("server_url") != url:
        aside = terminal_dir.with_name(
            f"{terminal_dir.name}.before-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
        shutil.move(terminal_dir, aside)
        queued = int(status.get("queued") or 0)
        say(f"the terminal was enrolled with {status.get('server_url')}, this server is {url}: "
            f"enrolling it again (the old one is kept in {aside}"
            + (f", with {queued} unsynced sale(s))" if queued else ")"))
        if not queued:  # retire the old device here, if it was this server's
            subprocess.run([*server_cmd, "revoke-device", "--db", db_url, "--device",
                            str(status.get("device_id"))], capture_output=True)
        status = {"enrolled": False}
    if not status.get("enrolled"):
        code = run_json(*server_cmd, "enrollment-code", "--db", db_url, "--school",
                        school["school_id"], "--json")["enrollment_code"]
        run_json(*terminal_cmd, "enroll", "--server", url, "--code", str(code), "--name",
                 "Demo counter", "--json")
        say(f"terminal enrolled with {url}")


def _has_gui() -> bool:
    try:
        import terminal.app  # noqa: F401
    except ImportError:
        return False
    return True


def print_cheatsheet(demo: dict[str, Any], url: str, terminal_cmd: list[str],
                     seed_file: Path, secret_file: Path) -> None:
    school = demo["schools"][0]
    cashier = school["cashiers"][0]
    wallet = school["wallets"][1]
    product = school["products"][0]
    history = demo.get("history") or {}
    past = (f"  history      {history['sales']} sales over the past {history['days']} days\n"
            if history else "")
    topup = (f"{BIN / 'python'} {ROOT / 'packaging' / 'topup.py'} --server {url} "
             f"--secret-file {secret_file} --wallet {wallet['wallet_id']} --amount 20.00 "
             f"--currency {school['currency']}")
    print(f"""
Demo running: server {url}  (admin console {url}/admin)
  school       {school['name']}
  cashiers     {', '.join(f"{c['name']} PIN {c['pin']}" for c in school['cashiers'])}
  admin login  {school['admin']['email']} / {school['admin']['password']}
  platform     {demo['platform_admin']['email']} / {demo['platform_admin']['password']}
{past}  all demo data (bracelet UIDs, wallets, products): {seed_file}
Sell from a shell:
  {' '.join(terminal_cmd)} sell --cashier {cashier['cashier_id']} \\
      --uid {wallet['credential_uid']} --item {product['product_id']} --json
  {' '.join(terminal_cmd)} sync --json
A parent tops up {wallet['display_name']}'s wallet (the gateway's signed webhook):
  {topup}
Ctrl-C stops the demo.
""", flush=True)


if __name__ == "__main__":
    sys.exit(main())
