"""The spec's command line: output shapes, exit codes, one-line errors, lazy imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from terminal.core import Terminal

from .cli_run import ROOT, pos_terminal, pos_terminal_json
from .conftest import Page, bracelet, offline_terminal, wallet

UID = "04A1B2C3D4E5F6"


def ready(tmp_path: Path, balance: int = 2000) -> Path:
    data_dir = tmp_path / "t"
    offline_terminal(data_dir, Page(wallets=[wallet("w1", balance)],
                                    credentials=[bracelet(UID, "w1")])).close()
    return data_dir


def test_sell_and_void_print_the_spec_shape(tmp_path: Path) -> None:
    # the helper's clock is fixed in 2026; the CLI uses the real clock, so allow any age
    data_dir = ready(tmp_path)
    _raise_hours(data_dir)
    code, sale = pos_terminal_json(data_dir, "sell", "--cashier", "cash1", "--uid", UID,
                                   "--item", "water:2", "--item", "meal")
    assert code == 0
    assert set(sale) == {"ref", "seq", "total", "wallet_id", "balance_estimate"}
    assert (sale["seq"], sale["total"], sale["wallet_id"], sale["balance_estimate"]) == (
        1, 1500, "w1", 500)
    code, void = pos_terminal_json(data_dir, "void", "--ref", sale["ref"], "--cashier", "cash1")
    assert code == 0 and set(void) == set(sale)
    assert (void["seq"], void["total"], void["balance_estimate"]) == (2, 1500, 2000)


def test_refused_sale_exits_4_with_code_and_uses_no_seq(tmp_path: Path) -> None:
    data_dir = ready(tmp_path, balance=100)
    _raise_hours(data_dir)
    code, doc = pos_terminal_json(data_dir, "sell", "--cashier", "cash1", "--uid", UID,
                                  "--item", "meal")
    assert code == 4
    assert doc["refused"] == "insufficient_balance" and "balance" in doc["message"]
    code, status = pos_terminal_json(data_dir, "status")
    assert status["queued"] == 0 and status["last_seq"] == 0


def test_status_keys_and_errors_are_one_line(tmp_path: Path) -> None:
    code, status = pos_terminal_json(tmp_path / "empty", "status")
    assert code == 0
    assert {"enrolled", "device_id", "server_reachable", "queued", "queued_total",
            "oldest_unsynced_at", "last_sync_at", "snapshot_age_s", "reader"} <= set(status)
    assert status["enrolled"] is False
    done = pos_terminal(tmp_path / "empty", "sell", "--cashier", "c", "--uid", UID,
                       "--item", "x", "--json")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "not enrolled" in done.stderr
    done = pos_terminal(tmp_path / "empty", "sync", "--json")
    assert done.returncode == 1 and "not enrolled" in done.stderr


def test_data_dir_flag_and_env_and_python_dash_m(tmp_path: Path) -> None:
    data_dir = ready(tmp_path)
    env = {**os.environ, "POS_TERMINAL_DIR": "/nonexistent-should-not-be-used"}
    done = subprocess.run([sys.executable, "-m", "terminal", "--data-dir", str(data_dir),
                           "status", "--json"], capture_output=True, text=True, env=env,
                          cwd=ROOT, check=False)
    assert done.returncode == 0 and json.loads(done.stdout)["device_id"] == "dev_test"
    code, status = pos_terminal_json(data_dir, "status")   # env POS_TERMINAL_DIR
    assert code == 0
    assert status["device_id"] == "dev_test"


def test_sell_loads_neither_httpx_nor_pydantic_nor_qt(tmp_path: Path) -> None:
    data_dir = ready(tmp_path)
    _raise_hours(data_dir)
    probe = ("import sys; from terminal.cli import main; "
             f"rc = main(['--data-dir', {str(data_dir)!r}, 'sell', '--cashier', 'cash1', "
             f"'--uid', {UID!r}, '--item', 'water', '--json']); "
             "heavy = [m for m in ('httpx', 'pydantic', 'PySide6') if m in sys.modules]; "
             "print(rc, heavy)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=ROOT, check=False)
    assert done.stdout.splitlines()[-1] == "0 []", done.stdout + done.stderr


def test_reader_check_is_wired(tmp_path: Path) -> None:
    done = pos_terminal(tmp_path, "reader-check", "--reader", "simulated", "--seconds", "0.2")
    assert done.returncode in (0, 1)
    assert done.stdout or done.stderr


def _raise_hours(data_dir: Path) -> None:
    """The CLI runs on the real clock; move the test snapshot's sync time to now."""
    from shared.clock import utcnow
    from terminal.store import state

    term = Terminal(data_dir)
    state.record_synced(term.db, utcnow())
    term.close()


def test_text_output_shows_money_formatted_json_keeps_minor_units(tmp_path: Path) -> None:
    data_dir = ready(tmp_path)
    _raise_hours(data_dir)
    done = pos_terminal(data_dir, "sell", "--cashier", "cash1", "--uid", UID,
                        "--item", "water:2", "--item", "meal")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("sale 1 recorded: 15.00 SAR to Student, "
                                  "balance about 5.00 SAR (ref ")
    ref = done.stdout.rsplit("(ref ", 1)[1].rstrip(")\n")
    done = pos_terminal(data_dir, "void", "--ref", ref, "--cashier", "cash1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("void 2 recorded: 15.00 SAR back to Student, "
                                  "balance about 20.00 SAR (ref ")
    done = pos_terminal(data_dir, "sell", "--cashier", "cash1", "--uid", UID, "--item", "meal")
    text = pos_terminal(data_dir, "status").stdout
    assert "queued_total: 27.00 SAR" in text            # 15.00 + the void's 0 + 12.00
    # the per-sale cap is named as it works: it applies online too
    assert "largest sale allowed (online or offline): 50.00 SAR" in text
    assert "most waiting to sync before selling stops: 200.00 SAR" in text
    code, status = pos_terminal_json(data_dir, "status")
    assert code == 0 and status["queued_total"] == 2700                # --json: integer minor units
    done = pos_terminal(data_dir, "sell", "--cashier", "cash1", "--uid", UID,
                        "--item", "meal")
    assert done.returncode == 4
    assert done.stdout == ("refused (insufficient_balance): Not enough balance: 8.00 SAR "
                           "available, the sale is 12.00 SAR.\n")
