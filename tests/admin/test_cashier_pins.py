"""Cashier PINs as a stolen till would expose them: hashed at the PIN parameters, 6 digits
encouraged, short ones warned about, older hashes shown to the admin and replaced when the PIN
is set again, and the new hash on its way to every till in the next snapshot delta.

Real app over HTTP on SQLite and PostgreSQL; PINs checked with the till's own code."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import unquote

import sqlalchemy as sa
from argon2 import PasswordHasher

from sync_server import records
from sync_server.secrets import PIN_MEMORY_KIB, PIN_PARALLELISM, PIN_TIME_COST
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import cashiers
from terminal.pins import verify_pin_hash
from tests.server.helpers import enroll, snapshot

from .conftest import as_role, query, scalar

PIN_PARAMS = f"$argon2id$v=19$m={PIN_MEMORY_KIB},t={PIN_TIME_COST},p={PIN_PARALLELISM}$"


def flash(resp: Any) -> str:
    return unquote(resp.cookies["pos_flash"].value)


async def pin_hash_of(db_url: str, name: str) -> str:
    return str(await scalar(db_url, sa.select(cashiers.c.pin_hash)
                            .where(cashiers.c.name == name)))


async def test_new_pins_use_the_pin_parameters_and_short_ones_are_warned_about(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    assert all(len(c["pin"]) == 6 for s in demo["schools"] for c in s["cashiers"])
    admin = await as_role(client, demo, "admin")
    page = await admin.page("/admin/cashiers")
    assert "PIN (6–8 digits; 4 or 5 are accepted but easy to crack" in page

    six = await admin.post("/admin/cashiers", {"name": "Maha", "pin": "402719"})
    assert flash(six) == "ok:Cashier Maha created."
    four = await admin.post("/admin/cashiers", {"name": "Omar", "pin": "2468"})
    assert flash(four).startswith("ok:Cashier Omar created. Note: a 4-digit PIN can be guessed")
    assert "use 6 digits or more" in flash(four)
    bad = await admin.post("/admin/cashiers", {"name": "Nope", "pin": "123"})
    assert flash(bad).startswith("err:")
    assert await scalar(db_url, sa.select(sa.func.count()).select_from(cashiers)
                        .where(cashiers.c.name == "Nope")) == 0

    maha = await pin_hash_of(db_url, "Maha")
    assert maha.startswith(PIN_PARAMS)
    assert verify_pin_hash(maha, "402719") and not verify_pin_hash(maha, "402718")
    assert (await pin_hash_of(db_url, "Omar")).startswith(PIN_PARAMS)
    assert "402719" not in await admin.page("/admin/cashiers")


async def test_an_older_hash_keeps_working_is_flagged_and_a_reset_reaches_the_tills(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    cashier = school["cashiers"][0]
    # A cashier whose PIN was set before the PIN parameters: argon2-cffi's defaults.
    older = PasswordHasher().hash("1234")
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.update(cashiers).values(pin_hash=older)
                               .where(cashiers.c.cashier_id == cashier["cashier_id"]))
    finally:
        await engine.dispose()
    device = await enroll(client, school["enrollment_code"])
    first = await snapshot(client, device["device_token"])
    sent = next(c for c in first["cashiers"] if c["cashier_id"] == cashier["cashier_id"])
    assert sent["pin_hash"] == older and verify_pin_hash(sent["pin_hash"], "1234")

    admin = await as_role(client, demo, "admin")
    rows = (await admin.page("/admin/cashiers")).split("<tr>")
    mine = next(r for r in rows if cashier["name"] in r)
    assert "older, weaker hash: set a new PIN" in mine
    other = next(r for r in rows if school["cashiers"][1]["name"] in r)
    assert "older, weaker hash" not in other

    reset = await admin.post(f"/admin/cashiers/{cashier['cashier_id']}", {"pin": "90817263"})
    assert flash(reset) == "ok:PIN reset."
    assert "older, weaker hash" not in next(
        r for r in (await admin.page("/admin/cashiers")).split("<tr>") if cashier["name"] in r)

    delta = await snapshot(client, device["device_token"], first["cursor"])
    assert delta["full"] is False
    rotated = next(c for c in delta["cashiers"] if c["cashier_id"] == cashier["cashier_id"])
    assert rotated["pin_hash"].startswith(PIN_PARAMS)
    assert verify_pin_hash(rotated["pin_hash"], "90817263")
    assert not verify_pin_hash(rotated["pin_hash"], "1234")
    stored = await query(db_url, sa.select(cashiers.c.pin_hash)
                         .where(cashiers.c.cashier_id == cashier["cashier_id"]))
    assert stored[0][0] == rotated["pin_hash"]


async def test_hashing_a_pin_leaves_the_event_loop_free(db_url: str, demo: dict[str, Any]
                                                        ) -> None:
    """A PIN hash costs a few hundred ms of CPU: terminals' pushes must not wait for it."""
    school_id = demo["schools"][0]["school_id"]
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.select(1))  # connected before timing starts
            task = asyncio.create_task(ticker())
            await asyncio.sleep(0.02)  # the ticker is running before the hash starts
            started = time.perf_counter()
            await records.create_cashier(conn, school_id, "Timed", "55667788")
            took = time.perf_counter() - started
            stop.set()
            await task
    finally:
        await engine.dispose()
    assert took > 0.1, f"hashing took only {took:.3f} s: this machine cannot show a stall"
    assert max(gaps) < took / 2, (max(gaps), took)
