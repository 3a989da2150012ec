"""How fast cashier PINs fall to someone who copied a till's ``terminal.db``.

Every till holds every cashier's PIN hash (the snapshot's ``cashiers.pin_hash``) so that
login works offline. Whoever copies the file can try PINs against those hashes on their own
machine, as fast as it hashes, with no lockout. This script does exactly that, with the real
parts: it writes PIN hashes made the way the server makes them into a real terminal store,
reads them back from the file with plain ``sqlite3`` (no key is needed), and then

- times one check at the till (``terminal.pins.verify_pin_hash``: what a cashier waits for at
  login), median and worst of ``--checks`` runs, with the CPU time it costs;
- runs one guessing process per core for ``--seconds`` seconds against each hash, counts the
  guesses, and extrapolates the time to try every 4-digit and every 6-digit PIN (on average
  an attacker needs half of that).

The baseline (``argon2-cffi`` defaults: every PIN hash the server made before issue 11, and
what ``secrets.hash_password`` still uses for admin passwords) and the current PIN parameters
(``sync_server.secrets.PIN_*``) are measured in the same run, so a loaded machine
slows both alike. Figures are for this machine; an attacker's machine with more cores divides
the times by its core count (argon2's memory cost is what keeps GPUs from doing far better).

    .venv/bin/python benchmarks/pin_bruteforce.py [--seconds 4] [--checks 7] [--also 192,2,2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from argon2 import PasswordHasher

from sync_server.secrets import (
    PIN_MEMORY_KIB,
    PIN_PARALLELISM,
    PIN_TIME_COST,
    hash_pin,
)
from terminal.pins import verify_pin_hash

SECRET_PIN = "730519"  # never among the guesses below, so every guess costs a full check


@dataclass(frozen=True)
class Figures:
    label: str
    params: str
    check_ms: float
    check_max_ms: float
    cpu_ms: float
    guesses_per_s: float

    def exhaust(self, digits: int, rate: float | None = None) -> float:
        return 10 ** digits / (rate or self.guesses_per_s)

    def idle_rate(self, cores: int) -> float:
        """Guesses per second on this many idle cores: other people's work on a shared
        machine slows the measured rate, CPU time per check much less."""
        return cores * 1000 / self.cpu_ms


def _store_with(hashes: dict[str, str], data_dir: Path) -> Path:
    """A real terminal store whose snapshot holds these cashiers' hashes."""
    from shared.protocol import SnapshotResponse
    from terminal.core import Terminal
    from terminal.store import snapshot, state

    term = Terminal(data_dir)
    now = datetime.now(UTC)
    state.save_device(term.db, state.Device(
        device_id="dev_bench", device_token="token-the-thief-also-gets", school_id="sch",
        currency="SAR", server_url="http://127.0.0.1:9", name="bench",
        enrolled_at=now.isoformat()))
    page = SnapshotResponse.model_validate({
        "cursor": "c", "full": True, "more": False, "server_time": now.isoformat(),
        "settings": {"currency": "SAR", "offline_max_sale": 5000,
                     "offline_max_unsynced_total": 200000, "offline_max_hours": 72,
                     "overdraft_limit": 0},
        "wallets": [], "credentials": [], "products": [],
        "cashiers": [{"cashier_id": label, "name": label, "pin_hash": pin_hash, "active": True}
                     for label, pin_hash in hashes.items()]})
    epoch = state.next_epoch(term.db)
    snapshot.apply_page(term.db, page, epoch)
    term.close()
    return data_dir / "terminal.db"


def _stolen_hashes(db_file: Path) -> dict[str, str]:
    """What the thief reads: no key, no app, just the file."""
    with sqlite3.connect(db_file) as conn:
        return dict(conn.execute("SELECT cashier_id, pin_hash FROM cashiers").fetchall())


def _guess(pin_hash: str, start: int, seconds: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    deadline = time.perf_counter() + seconds
    tried, candidate = 0, start
    while time.perf_counter() < deadline:
        if verify_pin_hash(pin_hash, f"{candidate:06d}"):
            break
        tried += 1
        candidate += 1
    out.put(tried)


def _guesses_per_second(pin_hash: str, seconds: float, workers: int) -> float:
    out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    procs = [mp.Process(target=_guess, args=(pin_hash, i * 100_000, seconds, out))
             for i in range(workers)]
    started = time.perf_counter()
    for proc in procs:
        proc.start()
    total = sum(out.get(timeout=seconds + 60) for _ in procs)
    for proc in procs:
        proc.join(timeout=30)
    return total / (time.perf_counter() - started)


def measure(label: str, params: str, pin_hash: str, checks: int, seconds: float,
            workers: int) -> Figures:
    walls, cpus = [], []
    for _ in range(checks):
        wall, cpu = time.perf_counter(), time.process_time()
        assert verify_pin_hash(pin_hash, SECRET_PIN)
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return Figures(label, params, statistics.median(walls), max(walls), statistics.median(cpus),
                   _guesses_per_second(pin_hash, seconds, workers))


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="guessing time per parameter set")
    parser.add_argument("--checks", type=int, default=7, help="till checks timed per set")
    parser.add_argument("--also", action="append", default=[], metavar="MiB,T,P",
                        help="another argon2id parameter set to compare, e.g. 192,2,2")
    args = parser.parse_args()
    workers = os.cpu_count() or 1
    baseline = PasswordHasher()
    hashes = {"baseline": baseline.hash(SECRET_PIN), "current": hash_pin(SECRET_PIN)}
    sets = [("baseline", f"argon2id m={baseline.memory_cost // 1024} MiB "
             f"t={baseline.time_cost} p={baseline.parallelism}"),
            ("current", f"argon2id m={PIN_MEMORY_KIB // 1024} MiB t={PIN_TIME_COST} "
             f"p={PIN_PARALLELISM}")]
    for i, spec in enumerate(args.also, 1):
        mib, t, p = (int(x) for x in spec.split(","))
        hashes[f"also{i}"] = PasswordHasher(time_cost=t, memory_cost=mib * 1024,
                                            parallelism=p).hash(SECRET_PIN)
        sets.append((f"also{i}", f"argon2id m={mib} MiB t={t} p={p}"))
    with tempfile.TemporaryDirectory(prefix="pos-pin-bench-") as tmp:
        stolen = _stolen_hashes(_store_with(hashes, Path(tmp) / "term"))
    print(f"{workers} cores, load average {os.getloadavg()[0]:.2f} at start; "
          f"{args.seconds:g} s of guessing per set with {workers} processes")
    results = [measure(label, params, stolen[label], args.checks, args.seconds, workers)
               for label, params in sets]
    print(f"{'set':9} {'parameters':27} {'till check p50/max':>19} {'cpu/check':>10} "
          f"{'guesses/s':>10} {'all 4-digit':>12} {'all 6-digit':>12}")
    for f in results:
        print(f"{f.label:9} {f.params:27} {f.check_ms:>9.0f} /{f.check_max_ms:>4.0f} ms "
              f"{f.cpu_ms:>7.0f} ms {f.guesses_per_s:>10.2f} {_duration(f.exhaust(4)):>12} "
              f"{_duration(f.exhaust(6)):>12}")
    print(f"the same on {workers} idle cores (cores / cpu per check):")
    for f in results:
        rate = f.idle_rate(workers)
        print(f"{f.label:9} {f.params:27} {'':>19} {'':>10} {rate:>10.2f} "
              f"{_duration(f.exhaust(4, rate)):>12} {_duration(f.exhaust(6, rate)):>12}")
    print(f"load average {os.getloadavg()[0]:.2f} at the end; cost factor current/baseline "
          f"{results[0].guesses_per_s / results[1].guesses_per_s:.2f}x per guess")


if __name__ == "__main__":
    main()
