"""Crash safety: ``pos-terminal sell`` killed with SIGKILL at random moments, 100+ times.

Every sale whose JSON was printed must be in the outbox after restart, seqs must be gap-free,
and after sync the server must hold each sale exactly once (ledger audit ok, no missing seqs,
every wallet's balance down by exactly what this terminal sold).
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from terminal.core import Terminal
from terminal.store import outbox, snapshot

from .cli_run import ROOT, audit_ledger, pos_terminal_json

KILLS = 110


def test_sigkill_during_sales_loses_nothing_and_server_applies_each_once(
        live_server, tmp_path: Path) -> None:
    data_dir = tmp_path / "term"
    school = live_server.demo["schools"][0]
    code, doc = pos_terminal_json(data_dir, "enroll", "--server", live_server.url,
                                  "--code", school["enrollment_code"], "--name", "Crash")
    assert code == 0, doc
    device_id = doc["device_id"]
    wallets = [w for w in school["wallets"] if w["daily_limit"] is None
               and w.get("status", "active") == "active"]
    water = min(school["products"], key=lambda p: p["price"])
    cashier = school["cashiers"][0]["cashier_id"]
    uid_to_wallet = {w["credential_uid"]: w["wallet_id"] for w in wallets}

    printed: dict[str, int] = {}         # ref -> seq, for every sale whose JSON was printed
    rng = random.Random(1234)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    for _ in range(KILLS):
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("sell_loop.py")), str(data_dir),
             cashier, water["product_id"], *uid_to_wallet], stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
        first = b""
        if rng.random() < 0.2:
            # a kill at any moment of the start (opening, migrating the store, first sale)
            time.sleep(rng.uniform(0.05, 0.6))
        else:
            # a kill while it sells: wait for its first sale, however slowly a loaded machine
            # starts Python, so the kills land among sales rather than all in start-up
            assert proc.stdout is not None
            if select.select([proc.stdout], [], [], 60)[0]:
                first = proc.stdout.readline()
            time.sleep(rng.uniform(0, 0.4))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        for line in (first + out).decode().splitlines():
            try:
                sale = json.loads(line)
            except json.JSONDecodeError:
                continue  # the kill may cut a line short; a cut line was never "printed"
            if "ref" in sale:
                printed[sale["ref"]] = sale["seq"]
    elapsed = time.monotonic() - started
    assert len(printed) >= 200, f"only {len(printed)} sales in {elapsed:.0f} s"

    term = Terminal(data_dir)
    rows = outbox.unacked_batch(term.db.conn, 0, 100_000)
    by_ref = {r.ref: r.seq for r in rows}
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1)), "seq gap or repeat"
    assert outbox.last_seq(term.db.conn) == len(rows)
    lost = {ref for ref in printed if by_ref.get(ref) != printed[ref]}
    assert not lost, f"{len(lost)} printed sales missing from the outbox"
    term.close()

    code, report = pos_terminal_json(data_dir, "sync")
    assert code == 0, report
    assert report["results"]["applied"] == len(rows)
    assert report["queued"] == 0 and report["acked_seq"] == len(rows)
    code, again = pos_terminal_json(data_dir, "sync")
    assert code == 0 and again["results"]["applied"] == 0

    audit = audit_ledger(live_server.db_url)
    assert audit["ok"] is True
    assert all(not s["missing_seqs"] for s in audit["schools"])
    assert device_id not in json.dumps([s["missing_seqs"] for s in audit["schools"]])

    spent: Counter[str] = Counter()
    for row in rows:
        spent[row.wallet_id] += row.total
    term = Terminal(data_dir)
    for w in wallets:
        assert term.balance_estimate(w["wallet_id"]) == w["balance"] - spent[w["wallet_id"]]
        # the server's own balance in the fresh snapshot: each sale was posted exactly once
        server_wallet = snapshot.get_wallet(term.db, w["wallet_id"])
        assert server_wallet is not None
        assert server_wallet.balance == w["balance"] - spent[w["wallet_id"]]
    print(f"{KILLS} kills, {len(printed)} printed sales, {len(rows)} recorded, "
          f"{elapsed:.1f} s")
