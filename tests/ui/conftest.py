"""Cashier-app test helpers: offscreen Qt, the real app on the real core, screenshots.

``QT_QPA_PLATFORM`` must be set before any QApplication exists, hence at import time here.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QApplication, QWidget

from terminal.core import Terminal
from terminal.readers.simulated import SimulatedReader
from terminal.sync.backoff import Backoff
from terminal.ui import i18n, theme

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
SIZE = (1024, 600)

SETTINGS = {"currency": "SAR", "offline_max_sale": 5000, "offline_max_unsynced_total": 20000,
            "offline_max_hours": 72, "overdraft_limit": 0, "timezone": "Asia/Riyadh"}
PRODUCTS = [
    {"product_id": "water", "name": "Water 330ml", "price": 150, "category": "Drinks",
     "active": True},
    {"product_id": "juice", "name": "Orange juice", "price": 300, "category": "Drinks",
     "active": True},
    {"product_id": "meal", "name": "Chicken wrap", "price": 1200, "category": "Meals",
     "active": True},
]
CASHIERS = [{"cashier_id": "cash1", "name": "Amal", "pin_hash": "x", "active": True}]


@pytest.fixture(scope="session", autouse=True)
def _translations() -> None:
    """The compiled catalogues, as the install step builds them (packaging/i18n build): a
    test that switches to Arabic must not silently stay in English on a fresh checkout."""
    from tests.ui.i18n_support import build_catalogues

    build_catalogues()


@pytest.fixture(autouse=True)
def _themed(qapp: QApplication) -> Iterator[None]:
    theme.apply(qapp)
    yield
    if i18n.current() != i18n.SOURCE_LANGUAGE:  # the language is process-wide: reset it
        i18n.switch(qapp, i18n.SOURCE_LANGUAGE)


def screenshot(widget: QWidget, name: str) -> Path:
    """Save what the widget shows now (for a person to look at; gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    QApplication.processEvents()
    assert widget.grab().save(str(path)), f"could not save {path}"
    return path


def plain(text: str) -> str:
    """``text`` without the Unicode isolates that keep amounts and names whole inside
    sentences of the other direction (U+2066..U+2069)."""
    return "".join(ch for ch in text if ch not in "\u2066\u2067\u2068\u2069")


@pytest.fixture
def shot() -> Callable[[QWidget, str], Path]:
    return screenshot


def open_app(qtbot: Any, data_dir: Path, server_url: str, enroll_code: str, name: str,
             reader: SimulatedReader) -> tuple[Any, Terminal]:
    """The real app on the real core, shown at 1024x600, set to enroll itself with ``enroll_code``
    when started (the caller calls ``window.start()``), syncing every half second."""
    from terminal.app import AppOptions, create_window

    terminal = Terminal(data_dir, http_timeout=3.0)
    window = create_window(data_dir, AppOptions(
        server=server_url, enroll_code=enroll_code, name=name, sync_interval=0.5),
        terminal=terminal, reader=reader, backoff=Backoff(base=0.2, cap=0.5))
    qtbot.addWidget(window)
    window.resize(*SIZE)
    window.show()
    return window, terminal


def offline_terminal(data_dir: Path, server_url: str, wallets: list[dict[str, Any]],
                     credentials: list[dict[str, Any]], *,
                     products: list[dict[str, Any]] | None = None, **kwargs: Any) -> Terminal:
    """An enrolled terminal with a snapshot written through the real snapshot code, pointed
    at ``server_url`` (which may be a server that never answers)."""
    from shared.protocol import SnapshotResponse
    from terminal.store import snapshot, state

    term = Terminal(data_dir, **kwargs)
    now = datetime.now(UTC)
    state.save_device(term.db, state.Device(
        device_id="dev_ui", device_token="t", school_id="sch", currency="SAR",
        server_url=server_url, name="ui", enrolled_at=now.isoformat()))
    page = SnapshotResponse.model_validate({
        "cursor": "c1", "full": True, "more": False, "server_time": now.isoformat(),
        "settings": SETTINGS, "wallets": wallets, "credentials": credentials,
        "products": PRODUCTS if products is None else products, "cashiers": CASHIERS})
    epoch = state.next_epoch(term.db)
    snapshot.apply_page(term.db, page, epoch)
    snapshot.finish_pull(term.db, epoch=epoch, cursor="c1", full=True, at=now, server_time=now)
    state.record_contact(term.db, now, ok=True)
    state.record_synced(term.db, now)
    return term


def wallet(wallet_id: str, name: str, balance: int, **extra: Any) -> dict[str, Any]:
    """A snapshot wallet row; ``extra``: v1.1 fields (grade, homeroom, restrictions...)."""
    return {"wallet_id": wallet_id, "display_name": name, "balance": balance,
            "daily_limit": None, "status": "active",
            "balance_as_of": datetime.now(UTC).isoformat(), **extra}


@pytest.fixture
def fast_backoff() -> Backoff:
    return Backoff(base=0.2, cap=0.5)


@pytest.fixture
def sim_reader() -> Iterator[SimulatedReader]:
    reader = SimulatedReader()
    yield reader
