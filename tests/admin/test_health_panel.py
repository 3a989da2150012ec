"""The dashboard's health panel against the real app and database: a stale terminal, a gap in a
terminal's seqs, a payment held for review and a webhook failure show once they exist, for
every role that sees the dashboard, and only for their own school."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from shared.clock import utcnow
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import devices
from tests.server.conftest_helpers import new_code
from tests.server.helpers import enroll, push, sale

from .conftest import as_role
from .test_webhook import deliver, event


async def _age_device(db_url: str, device_id: str, minutes: int) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.update(devices).where(devices.c.device_id == device_id)
                               .values(last_seen_at=utcnow() - timedelta(minutes=minutes)))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("role", ["admin", "viewer", "platform"])
async def test_panel_shows_stale_terminal_gap_held_payment_and_webhook_failure(
        client: Any, demo: dict[str, Any], db_url: str, role: str) -> None:
    school = demo["schools"][0]
    session = await as_role(client, demo, role)
    calm = await session.page("/admin/")
    assert 'id="health-ok"' in calm and "stale-terminal" not in calm

    fresh = await enroll(client, school["enrollment_code"], name="Counter Fresh")
    await push(client, fresh["device_token"], [sale(school, 1)])
    quiet = await enroll(client, await new_code(db_url, school["school_id"]),
                         name="Counter Quiet")
    answer = await push(client, quiet["device_token"], [sale(school, 1), sale(school, 3)])
    assert answer["missing_seqs"] == [2]
    await _age_device(db_url, quiet["device_id"], 40)  # the default limit is 15 minutes

    wallet = school["wallets"][3]["wallet_id"]
    assert (await deliver(client, event(wallet, "evt_big", amount=900_000))).status == 202
    small = dict(event(wallet, "evt_c", amount=5000), reference="pay_ref_2")
    assert (await deliver(client, small)).status == 200
    assert (await deliver(client, dict(small, amount=6000))).status == 409

    page = await session.page("/admin/")
    panel = page[page.index('id="health"'):page.index("</section>", page.index('id="health"'))]
    assert 'id="health-ok"' not in panel
    stale = [line for line in panel.splitlines() if "stale-terminal" in line]
    assert len(stale) == 1 and "Counter Quiet" in stale[0] and "15" in stale[0]
    assert "Counter Fresh" not in "".join(stale)
    unsynced = [line for line in panel.splitlines() if 'class="unsynced"' in line]
    assert len(unsynced) == 1 and "Counter Quiet" in unsynced[0] and "1 sale " in unsynced[0]
    assert "1 held for review, 0 pending" in panel
    assert "1 webhook failure in the last 24 hours" in panel

    other = await as_role(client, demo, "admin", school=1)  # another school sees none of it
    assert 'id="health-ok"' in await other.page("/admin/")


async def test_panel_speaks_arabic(client: Any, demo: dict[str, Any], db_url: str) -> None:
    school = demo["schools"][0]
    device = await enroll(client, school["enrollment_code"], name="Counter Quiet")
    await push(client, device["device_token"], [sale(school, 1)])
    await _age_device(db_url, device["device_id"], 60)
    session = await as_role(client, demo, "admin")
    resp = await session.get("/admin/", headers={"Accept-Language": "ar"})
    page = await resp.text()
    panel = page[page.index('id="health"'):page.index("</section>", page.index('id="health"'))]
    assert "Not seen" not in panel and "Health" not in panel
    assert "Counter Quiet" in panel
