"""Terminal test helpers: a real store in a temp directory, filled through the same snapshot
code a sync uses, and a settable clock (time is an input of the offline rules)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.protocol import SnapshotResponse
from terminal.core import Terminal
from terminal.store import snapshot, state

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)  # 12:00 in Riyadh

SETTINGS = {"currency": "SAR", "offline_max_sale": 5000, "offline_max_unsynced_total": 20000,
            "offline_max_hours": 72, "overdraft_limit": 0, "timezone": "Asia/Riyadh"}


class SettableClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def wallet(wallet_id: str, balance: int, *, daily_limit: int | None = None,
           status: str = "active", name: str = "Student") -> dict[str, Any]:
    return {"wallet_id": wallet_id, "display_name": name, "balance": balance,
            "daily_limit": daily_limit, "status": status, "balance_as_of": T0.isoformat()}


def bracelet(uid: str, wallet_id: str, status: str = "active") -> dict[str, Any]:
    return {"uid": uid, "wallet_id": wallet_id, "status": status}


PRODUCTS = [
    {"product_id": "water", "name": "Water 330ml", "price": 150, "category": "Drinks",
     "active": True},
    {"product_id": "meal", "name": "Lunch", "price": 1200, "category": "Food", "active": True},
    {"product_id": "old", "name": "Retired", "price": 100, "category": "Food", "active": False},
]
CASHIERS = [{"cashier_id": "cash1", "name": "Amal", "pin_hash": "x", "active": True},
            {"cashier_id": "gone", "name": "Left", "pin_hash": "x", "active": False}]


@dataclass
class Page:
    wallets: list[dict[str, Any]] = field(default_factory=list)
    credentials: list[dict[str, Any]] = field(default_factory=list)
    products: list[dict[str, Any]] = field(default_factory=lambda: list(PRODUCTS))
    cashiers: list[dict[str, Any]] = field(default_factory=lambda: list(CASHIERS))
    settings: dict[str, Any] = field(default_factory=lambda: dict(SETTINGS))
    full: bool = True

    def response(self, now: datetime, cursor: str = "c1") -> SnapshotResponse:
        return SnapshotResponse.model_validate({
            "cursor": cursor, "full": self.full, "more": False,
            "server_time": now.isoformat(), "settings": self.settings,
            "wallets": self.wallets, "credentials": self.credentials,
            "products": self.products, "cashiers": self.cashiers})


def load_snapshot(term: Terminal, page: Page, now: datetime) -> None:
    """Write a snapshot exactly as a completed pull does."""
    db = term.db
    epoch = state.next_epoch(db)
    snapshot.apply_page(db, page.response(now), epoch)
    snapshot.finish_pull(db, epoch=epoch, cursor="c1", full=page.full, at=now, server_time=now)
    state.record_contact(db, now, ok=True)
    state.record_synced(db, now)


def offline_terminal(path: Path, page: Page, clock: SettableClock | None = None) -> Terminal:
    """An enrolled terminal with a snapshot and no server (its URL points at a closed port)."""
    clock = clock or SettableClock()
    term = Terminal(path, clock=clock)
    state.save_device(term.db, state.Device(
        device_id="dev_test", device_token="tok-secret", school_id="sch_test",
        currency="SAR", server_url="http://127.0.0.1:9", name="Counter 1",
        enrolled_at=clock().isoformat()))
    load_snapshot(term, page, clock())
    return term


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()
