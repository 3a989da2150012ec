"""After a till is lost, the school rotates the cashiers' PINs: the new hash reaches every
other till in its next snapshot delta, the old PIN stops working there and the new one works,
offline from then on. Two real terminal cores against the real server in-process."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sync_server import records
from sync_server.secrets import PIN_MEMORY_KIB, PIN_PARALLELISM, PIN_TIME_COST
from sync_server.storage.engine import create_engine
from terminal.core import Terminal
from terminal.store import snapshot

NEW_PIN = "58203917"


def rotate_pin(db_url: str, school_id: str, cashier_id: str, pin: str) -> None:
    """What the console's "Reset PIN" does (records.update_cashier), in its own transaction."""
    async def run() -> None:
        engine = create_engine(db_url)
        try:
            async with engine.begin() as conn:
                await records.update_cashier(conn, school_id, cashier_id, pin=pin)
        finally:
            await engine.dispose()
    asyncio.run(run())


def test_a_rotated_pin_reaches_every_other_till_in_the_next_delta(live_server: Any,
                                                                  tmp_path: Path) -> None:
    school = live_server.demo["schools"][0]
    cashier = school["cashiers"][0]
    tills = [Terminal(tmp_path / "a"), Terminal(tmp_path / "b")]
    for till, code in zip(tills, (school["enrollment_code"], live_server.enrollment_code()),
                          strict=True):
        assert till.enroll(live_server.url, code, till.data_dir.name).first_snapshot.completed
        assert till.verify_pin(cashier["cashier_id"], cashier["pin"])
    wallet_id = school["wallets"][0]["wallet_id"]
    wallet_epochs = [snapshot.get_wallet(t.db, wallet_id).snapshot_epoch  # type: ignore[union-attr]
                     for t in tills]

    rotate_pin(live_server.db_url, school["school_id"], cashier["cashier_id"], NEW_PIN)

    for till, wallet_epoch in zip(tills, wallet_epochs, strict=True):
        report = till.sync_once()
        assert report.completed and report.snapshot_pages == 1, report.error
        stored = snapshot.get_cashier(till.db, cashier["cashier_id"])
        assert stored is not None
        assert stored.pin_hash.startswith(
            f"$argon2id$v=19$m={PIN_MEMORY_KIB},t={PIN_TIME_COST},p={PIN_PARALLELISM}$")
        # a delta: the wallet row was not rewritten, only what changed came down
        assert snapshot.get_wallet(till.db, wallet_id).snapshot_epoch == wallet_epoch  # type: ignore[union-attr]
        assert not till.verify_pin(cashier["cashier_id"], cashier["pin"])
        assert till.verify_pin(cashier["cashier_id"], NEW_PIN)
        till.close()
