"""The counter in a rush, measured through the real cashier window (offscreen, 1024x600):

1. tap to answer painted: from the reader reporting a UID (on its own thread, as hardware
   does) to the APPROVED band painted with that answer, p50/p99; baseline in the same run:
   the bare core, ``Terminal.record_sale`` called directly for the same kind of sale;
2. store statements per second while the till stands idle on the sale screen (sync thread
   running, server unreachable): now (redraw on change; target 0) against a replay of the old
   polling pattern (the status bar's refresh once a second: status, currency, alerts,
   selling_stopped), counted the same way, with SQLite's trace callback on every connection.

    .venv/bin/python benchmarks/counter.py [--taps 300] [--wallets 2000] [--idle 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlite_utils import Database
from terminal_common import enroll_offline, load_pages, percentile, snapshot_pages, uid_of

from terminal.core import Terminal


def steady_backoff(seconds: float) -> Any:
    """A backoff that waits the whole ``seconds`` after a failure: the real one draws a
    random delay below its cap, which could put a retry inside the measured idle time."""
    from terminal.sync.backoff import Backoff

    class Steady(Backoff):
        def next_delay(self, retry_after: float | None = None) -> float:
            self.failures += 1
            return self.cap

    return Steady(base=seconds, cap=seconds)


class CountingTerminal(Terminal):
    """The real core, counting every statement any of its connections runs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.statements = 0
        self._traced: set[int] = set()
        self._count_lock = threading.Lock()

    @property
    def db(self) -> Database:
        db = super().db
        if id(db.conn) not in self._traced:
            self._traced.add(id(db.conn))
            db.conn.set_trace_callback(self._trace)
        return db

    def _trace(self, _statement: str) -> None:
        with self._count_lock:
            self.statements += 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--taps", type=int, default=300)
    parser.add_argument("--wallets", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle to count")
    args = parser.parse_args()
    if 2 * (args.taps + args.warmup) > args.wallets:
        raise SystemExit("need two wallets per tap (one through the window, one bare)")

    from PySide6.QtWidgets import QApplication

    from terminal.app import create_window
    from terminal.readers.simulated import SimulatedReader
    from terminal.ui import theme

    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    theme.apply(app)

    def pump(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.002)

    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        term = CountingTerminal(Path(tmp) / "term")
        enroll_offline(term)
        load_pages(term, snapshot_pages(args.wallets))
        reader = SimulatedReader()
        window = create_window(Path(tmp) / "term", terminal=term, reader=reader,
                               backoff=steady_backoff(600.0))
        window.resize(1024, 600)
        window.show()
        window.start()  # reader and sync thread (its first try fails: nothing listens)
        window.counter.log_in("cash1", "Amal")
        window.show_sale()
        sale, panel = window.sale_view, window.sale_view.result
        pump(1.0)

        # -- 1. tap to painted answer, and the bare core for the same sale
        total = args.taps + args.warmup
        screen: list[float] = []
        for i in range(total):
            sale.add_nth(1 + i % 3)
            app.processEvents()
            painted = panel.paint_count
            tapper = threading.Thread(target=reader.tap, args=(uid_of(i),))
            tapper.start()
            deadline = time.perf_counter() + 5
            while not (panel.paint_count > painted and panel.state == "approved"
                       and panel.outcome is not None and panel.outcome.read_at is not None
                       and panel.painted_at >= panel.outcome.read_at):
                app.processEvents()
                if time.perf_counter() > deadline:
                    raise SystemExit(f"tap {i}: no approved answer ({panel.state}: "
                                     f"{panel.detail.text()})")
            tapper.join()
            if i >= args.warmup:
                screen.append(panel.painted_at - panel.outcome.read_at)
        bare: list[float] = []
        product = term.products()[0].product_id
        for i in range(total, 2 * total):
            t0 = time.perf_counter()
            term.record_sale("cash1", [(product, 1)], uid=uid_of(i))
            if i >= total + args.warmup:
                bare.append(time.perf_counter() - t0)
        pump(1.0)  # the redraws those bare sales asked for

        # -- 2. idle: statements per second now, then the old once-a-second poll replayed
        before = term.statements
        pump(args.idle)
        idle_now = (term.statements - before) / args.idle
        before = term.statements
        ticks = 0
        end = time.perf_counter() + args.idle
        next_tick = time.perf_counter()
        while time.perf_counter() < end:
            if time.perf_counter() >= next_tick:
                term.status()          # what MainWindow.refresh_status read each second
                term.currency()
                term.alerts()
                term.selling_stopped()
                ticks += 1
                next_tick += 1.0
            app.processEvents()
            time.sleep(0.002)
        idle_old = (term.statements - before) / args.idle
        window.shutdown()
        term.close()

    def ms(values: list[float], q: float) -> str:
        return f"{percentile(values, q) * 1000:8.2f}"

    print(f"counter benchmark: {len(screen)} taps, {args.wallets} wallets, offscreen 1024x600")
    print(f"{'':40} {'p50':>8} {'p99':>8} {'max':>8}  (ms)")
    print(f"{'tap -> answer painted (real window)':40} {ms(screen, 50)} {ms(screen, 99)} "
          f"{max(screen) * 1000:8.2f}")
    print(f"{'bare Terminal.record_sale (baseline)':40} {ms(bare, 50)} {ms(bare, 99)} "
          f"{max(bare) * 1000:8.2f}")
    print(f"idle store statements per second over {args.idle:.0f} s: now {idle_now:.1f} "
          f"(target 0); old once-a-second poll replayed: {idle_old:.1f} ({ticks} polls)")


if __name__ == "__main__":
    main()
