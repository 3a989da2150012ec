"""School settings: admins change the offline caps, terminals get them with the next delta,
viewers cannot, bad values change nothing, and the audit log records who did what."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from sync_server.storage.schema import schools
from tests.server.helpers import enroll, snapshot

from .conftest import as_role, audit_actions, scalar

GOOD = {"offline_max_sale": "25.00", "offline_max_unsynced_total": "1,500.00",
        "offline_max_hours": "24", "overdraft_limit": "5"}


async def test_admin_changes_caps_and_terminals_get_them(client: Any, demo: dict[str, Any],
                                                         db_url: str) -> None:
    school = demo["schools"][0]
    device = await enroll(client, school["enrollment_code"])
    before = await snapshot(client, device["device_token"])
    admin = await as_role(client, demo, "admin")
    page = await admin.page("/admin/settings")
    assert 'name="offline_max_sale"' in page and "50.00" in page  # the demo default, 5000
    saved = await admin.post("/admin/settings", GOOD)
    assert saved.status == 303
    delta = await snapshot(client, device["device_token"], before["cursor"])
    assert delta["full"] is False
    assert delta["settings"] == {**before["settings"], "offline_max_sale": 2500,
                                 "offline_max_unsynced_total": 150000,
                                 "offline_max_hours": 24, "overdraft_limit": 500}
    assert "settings_updated" in await audit_actions(db_url, school["school_id"])
    again = await admin.post("/admin/settings", GOOD)  # nothing changed: no second audit row
    assert again.status == 303
    assert (await audit_actions(db_url, school["school_id"])).count("settings_updated") == 1


async def test_bad_values_and_viewers_change_nothing(client: Any, demo: dict[str, Any],
                                                     db_url: str) -> None:
    school_id = demo["schools"][0]["school_id"]
    cap = sa.select(schools.c.offline_max_sale).where(schools.c.school_id == school_id)
    original = await scalar(db_url, cap)
    admin = await as_role(client, demo, "admin")
    for bad in ({"offline_max_sale": "-1"}, {"offline_max_sale": "1.234"},
                {"offline_max_hours": "0"}, {"offline_max_hours": "abc"},
                {"offline_max_sale": "5000", "offline_max_unsynced_total": "10"}):
        resp = await admin.post("/admin/settings", {**GOOD, **bad})
        assert resp.status == 303, bad
        assert await scalar(db_url, cap) == original, bad
    viewer = await as_role(client, demo, "viewer")
    assert "Save settings" not in await viewer.page("/admin/settings")
    refused = await viewer.post("/admin/settings", GOOD)
    assert refused.status == 403
    no_csrf = await admin.post("/admin/settings", GOOD, csrf=False)
    assert no_csrf.status in (400, 403)
    assert await scalar(db_url, cap) == original


async def test_platform_admin_changes_only_the_school_it_picked(
        client: Any, demo: dict[str, Any], db_url: str) -> None:
    first, second = (s["school_id"] for s in demo["schools"])
    platform = await as_role(client, demo, "platform", school=1)
    assert (await platform.post("/admin/settings", GOOD)).status == 303
    cap = schools.c.offline_max_sale
    assert await scalar(db_url, sa.select(cap).where(schools.c.school_id == second)) == 2500
    assert await scalar(db_url, sa.select(cap).where(schools.c.school_id == first)) == 5000
