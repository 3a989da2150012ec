"""The bracelet inventory through ``records``, on SQLite and PostgreSQL: the state machine,
each change's history row, the bracelet.blocked event, and an active UID in one school only
(including two schools racing for it on PostgreSQL)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from shared.clock import utcnow
from sync_server import bracelet_inventory as inventory
from sync_server import records
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import (
    bracelets,
    credential_events,
    credentials,
    webhook_deliveries,
    webhook_endpoints,
    webhook_events,
)

NEW = "04AA00BB00CC01"


async def _history(conn: Any, school_id: str, uid: str) -> list[tuple[str, str | None]]:
    rows = await conn.execute(sa.select(credential_events.c.action, credential_events.c.actor_id)
                              .where(credential_events.c.school_id == school_id,
                                     credential_events.c.uid == uid)
                              .order_by(credential_events.c.event_id))
    return [(r.action, r.actor_id) for r in rows]


async def _state(conn: Any, school_id: str, uid: str) -> str | None:
    return (await conn.execute(sa.select(bracelets.c.state).where(
        bracelets.c.school_id == school_id, bracelets.c.uid == uid))).scalar_one_or_none()


async def test_life_of_a_bracelet_from_stock_to_retired(demo: dict[str, Any],
                                                       db_url: str) -> None:
    school = demo["schools"][0]
    sid, wallet = school["school_id"], school["wallets"][5]["wallet_id"]
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(webhook_endpoints).values(
                endpoint_id="whe_t", school_id=sid, url="http://127.0.0.1:9/hook",
                secret="s" * 32, event_types=["bracelet.blocked"], active=True,
                created_at=utcnow(), updated_at=utcnow()))
            await records.stock_bracelet(conn, sid, "04:aa:00:bb:00:cc:01", actor="usr_a")
            assert await _state(conn, sid, NEW) == "in_stock"
            with pytest.raises(records.RecordError, match="already in this school"):
                await records.stock_bracelet(conn, sid, NEW)
            with pytest.raises(records.RecordError, match="only an assigned"):
                await records.deliver_bracelet(conn, sid, NEW)
            await records.assign_credential(conn, sid, wallet, NEW, actor="usr_m")
            with pytest.raises(records.AlreadyAssigned):
                await records.assign_credential(conn, sid, wallet, NEW)
            with pytest.raises(records.RecordError, match="active on another student"):
                await records.assign_credential(conn, sid, school["wallets"][6]["wallet_id"],
                                                NEW)
            with pytest.raises(records.RecordError, match="only a blocked"):
                await records.retire_bracelet(conn, sid, NEW)
            await records.deliver_bracelet(conn, sid, NEW, actor="usr_m")
            assert await _state(conn, sid, NEW) == "delivered"
            with pytest.raises(records.RecordError, match="unknown reason"):
                await records.block_credential(conn, sid, NEW, reason="stolen by aliens")
            await records.block_credential(conn, sid, NEW, reason="damaged", actor="usr_a")
            with pytest.raises(records.RecordError, match="already blocked"):
                await records.block_credential(conn, sid, NEW)
            with pytest.raises(records.RecordError, match="blocked bracelet is not given"):
                await records.assign_credential(conn, sid, wallet, NEW)
            await records.retire_bracelet(conn, sid, NEW, actor="usr_a")
            assert await _state(conn, sid, NEW) == "retired"
            assert await _history(conn, sid, NEW) == [
                ("stocked", "usr_a"), ("assigned", "usr_m"), ("delivered", "usr_m"),
                ("blocked", "usr_a"), ("retired", "usr_a")]
            # Terminals still see it blocked (retiring does not touch the credential).
            status = (await conn.execute(sa.select(credentials.c.status).where(
                credentials.c.school_id == sid, credentials.c.uid == NEW))).scalar_one()
            assert status == "blocked"
            told = (await conn.execute(sa.select(webhook_events).where(
                webhook_events.c.event_type == "bracelet.blocked",
                webhook_events.c.school_id == sid))).all()
            # The seed's lost bracelet was told too (no endpoint then, so no delivery).
            [event] = [e for e in told if e.data["uid_masked"] == "04AA…CC01"]
            assert event.data == {"wallet_id": wallet,
                                  "student_number": (await conn.execute(sa.text(
                                      "SELECT student_number FROM wallets WHERE wallet_id = :w"),
                                      {"w": wallet})).scalar_one(),
                                  "uid_masked": "04AA…CC01", "reason": "damaged"}
            deliveries = (await conn.execute(sa.select(sa.func.count()).where(
                webhook_deliveries.c.event_id == event.event_id))).scalar_one()
            assert deliveries == 1
    finally:
        await engine.dispose()


async def test_seeded_bracelets_have_history_and_inventory(demo: dict[str, Any],
                                                           db_url: str) -> None:
    school = demo["schools"][0]
    sid = school["school_id"]
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            uid = school["wallets"][3]["credential_uid"]
            assert await _state(conn, sid, uid) == "assigned"
            assert await _history(conn, sid, uid) == [("assigned", None)]
            lost = school["blocked_credential_uid"]
            assert await _state(conn, sid, lost) == "blocked"
            assert [a for a, _ in await _history(conn, sid, lost)] == ["assigned", "blocked"]
    finally:
        await engine.dispose()


async def test_an_active_uid_belongs_to_one_school(demo: dict[str, Any], db_url: str) -> None:
    one, two = demo["schools"]
    theirs = two["wallets"][4]["credential_uid"]
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            with pytest.raises(records.RecordError, match="active in another school"):
                await records.assign_credential(conn, one["school_id"],
                                                one["wallets"][1]["wallet_id"], theirs)
            with pytest.raises(records.RecordError, match="active in another school"):
                await records.stock_bracelet(conn, one["school_id"], theirs)
            # The transaction is still usable after the refusals.
            await records.assign_credential(conn, one["school_id"],
                                            one["wallets"][1]["wallet_id"], NEW)
        async with engine.begin() as conn:
            # Once blocked there, it may be given out here (a bracelet moved schools).
            await records.block_credential(conn, two["school_id"], theirs, reason="left")
            await records.assign_credential(conn, one["school_id"],
                                            one["wallets"][1]["wallet_id"], theirs)
    finally:
        await engine.dispose()


async def test_two_schools_racing_for_one_uid_on_postgresql(demo: dict[str, Any],
                                                            db_url: str) -> None:
    """Both transactions pass the check before either commits; the unique index decides,
    the loser gets a RecordError and its transaction stays usable (SAVEPOINT). SQLite's
    write transactions exclude each other, so there is no race to lose there."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers: the check alone decides")
    one, two = demo["schools"]
    engine = create_engine(db_url, pool_size=2)
    outcomes: dict[str, str] = {}
    both_checked = asyncio.Barrier(2)
    real_check = inventory.active_elsewhere

    async def checked(conn: Any, school_id: str, uid: str) -> bool:
        result = await real_check(conn, school_id, uid)
        await both_checked.wait()
        return result

    async def take(school: dict[str, Any]) -> None:
        async with engine.begin() as conn:
            try:
                await records.assign_credential(conn, school["school_id"],
                                                school["wallets"][2]["wallet_id"], NEW)
                outcomes[school["school_id"]] = "assigned"
            except records.RecordError as exc:
                outcomes[school["school_id"]] = str(exc)
                await conn.execute(sa.text("SELECT 1"))  # still usable after the refusal

    inventory.active_elsewhere = checked  # type: ignore[assignment]
    try:
        await asyncio.wait_for(asyncio.gather(take(one), take(two)), 60)
    finally:
        inventory.active_elsewhere = real_check  # type: ignore[assignment]
        await engine.dispose()
    assert sorted(outcomes.values()) == ["assigned",
                                         "this bracelet was just made active elsewhere"]
    engine = create_engine(db_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            active = (await conn.execute(sa.select(sa.func.count()).where(
                credentials.c.uid == NEW, credentials.c.status == "active"))).scalar_one()
            kept = (await conn.execute(sa.select(sa.func.count()).where(
                bracelets.c.uid == NEW))).scalar_one()
    finally:
        await engine.dispose()
    assert active == 1 and kept == 1
