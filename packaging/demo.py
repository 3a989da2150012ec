"""The README's run command: a sync server with demo data, and a terminal enrolled to it.

First run: migrates ``var/demo/pos-server.db``, seeds two demo schools and keeps the seed
output (codes, PINs, passwords) in ``var/demo/demo.json``; later runs reuse them. Then it serves
on http://127.0.0.1:8080 (``--port``), enrolls the terminal in ``var/demo/terminal`` and opens
the cashier app with the simulated reader when the app is installed (``--headless`` skips it).
Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from shared.health import ServerDidNotStart, wait_until_healthy

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run_json(*cmd: str) -> dict[str, object]:
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"demo: {' '.join(cmd[:2])} failed: {out.stderr.strip()}")
    return dict(json.loads(out.stdout))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--dir", type=Path, default=ROOT / "var" / "demo")
    parser.add_argument("--headless", action="store_true", help="do not open the cashier app")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{args.dir / 'pos-server.db'}"
    seed_file = args.dir / "demo.json"
    server_cmd = [str(BIN / "pos-server")]
    terminal_cmd = [str(BIN / "pos-terminal"), "--data-dir", str(args.dir / "terminal")]

    if not seed_file.exists():
        run_json(*server_cmd, "migrate", "--db", db_url, "--json")
        demo = run_json(*server_cmd, "seed-demo", "--db", db_url, "--json")
        seed_file.write_text(json.dumps(demo, indent=2))
        os.chmod(seed_file, 0o600)
    demo = json.loads(seed_file.read_text())
    school = demo["schools"][0]
    url = f"http://127.0.0.1:{args.port}"

    # The demo serves the console over plain HTTP on this machine: Secure cookies (the
    # server's default) would never come back, and signing in would fail.
    server = subprocess.Popen([*server_cmd, "serve", "--db", db_url, "--port", str(args.port)],
                              env={**os.environ, "POS_SECURE_COOKIES": "false"})
    procs = [server]
    try:
        try:
            wait_until_healthy(url, process=server)
        except ServerDidNotStart as exc:
            sys.exit(f"demo: {exc} (is the port in use? try --port)")

        status = run_json(*terminal_cmd, "status", "--json")
        if not status.get("enrolled"):
            code = run_json(*server_cmd, "enrollment-code", "--db", db_url, "--school",
                            school["school_id"], "--json")["enrollment_code"]
            run_json(*terminal_cmd, "enroll", "--server", url, "--code", str(code), "--name",
                     "Demo counter", "--json")

        print_cheatsheet(demo, url, terminal_cmd, seed_file)
        gui = None
        if not args.headless and _has_gui():
            gui = subprocess.Popen([*terminal_cmd, "--reader", "simulated"])
            procs.append(gui)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _has_gui() -> bool:
    try:
        import terminal.app  # noqa: F401
    except ImportError:
        return False
    return True


def print_cheatsheet(demo: dict[str, object], url: str, terminal_cmd: list[str],
                     seed_file: Path) -> None:
    school = demo["schools"][0]  # type: ignore[index]
    cashier = school["cashiers"][0]
    wallet = school["wallets"][1]
    product = school["products"][0]
    print(f"""
Demo running: server {url}  (admin console {url}/admin)
  school       {school['name']}
  cashiers     {', '.join(f"{c['name']} PIN {c['pin']}" for c in school['cashiers'])}
  admin login  {school['admin']['email']} / {school['admin']['password']}
  platform     {demo['platform_admin']['email']} / {demo['platform_admin']['password']}
  all demo data (bracelet UIDs, wallets, products): {seed_file}
Sell from a shell:
  {' '.join(terminal_cmd)} sell --cashier {cashier['cashier_id']} \\
      --uid {wallet['credential_uid']} --item {product['product_id']} --json
  {' '.join(terminal_cmd)} sync --json
Ctrl-C stops the demo.
""", flush=True)


if __name__ == "__main__":
    sys.exit(main())
