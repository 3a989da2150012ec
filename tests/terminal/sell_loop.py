"""Crash-test driver: sells through ``pos-terminal``'s own ``main`` in a loop until killed.

Run as ``python sell_loop.py DATA_DIR CASHIER PRODUCT UID [UID ...]``. Each line on stdout is
the JSON ``pos-terminal sell --json`` printed, flushed only after the sale was committed.
"""

from __future__ import annotations

import random
import sys
import time

from terminal.cli import main


def run() -> None:
    data_dir, cashier, product, *uids = sys.argv[1:]
    while True:
        main(["--data-dir", data_dir, "sell", "--cashier", cashier, "--uid",
              random.choice(uids), "--item", product, "--json"])
        time.sleep(random.uniform(0, 0.02))


if __name__ == "__main__":
    run()
