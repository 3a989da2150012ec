"""The school's low-balance threshold on the settings page: admins set it (money, in the
school currency) and turn it off, each change audited and invisible to terminals; bad values,
managers, viewers and a post without CSRF change nothing."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from sync_server.storage.schema import schools
from tests.server.helpers import enroll, snapshot

from .conftest import as_role, audit_actions, scalar
from .test_settings import GOOD


def threshold_of(school_id: str) -> Any:
    return sa.select(schools.c.low_balance_threshold).where(schools.c.school_id == school_id)


async def test_admin_sets_and_clears_the_threshold(client: Any, demo: dict[str, Any],
                                                   db_url: str) -> None:
    school = demo["schools"][0]
    school_id = school["school_id"]
    device = await enroll(client, school["enrollment_code"])
    before = await snapshot(client, device["device_token"])
    admin = await as_role(client, demo, "admin")
    page = await admin.page("/admin/settings")
    assert 'name="low_balance_threshold"' in page
    unchanged = {**GOOD, "offline_max_sale": "50.00", "offline_max_unsynced_total": "500.00",
                 "offline_max_hours": "72", "overdraft_limit": "0"}
    saved = await admin.post("/admin/settings", {**unchanged, "low_balance_threshold": "12.5"})
    assert saved.status == 303
    assert await scalar(db_url, threshold_of(school_id)) == 1250
    assert "12.50" in await admin.page("/admin/settings")
    assert (await audit_actions(db_url, school_id)).count("settings_updated") >= 1
    # Terminals see no settings change for it: the delta's settings are the same.
    delta = await snapshot(client, device["device_token"], before["cursor"])
    assert delta.get("settings", before["settings"])["overdraft_limit"] == \
        before["settings"]["overdraft_limit"]

    # Without the field (an older script): left as it is.
    await admin.post("/admin/settings", {**unchanged, "overdraft_limit": "1"})
    assert await scalar(db_url, threshold_of(school_id)) == 1250
    # Empty: off.
    await admin.post("/admin/settings", {**unchanged, "low_balance_threshold": ""})
    assert await scalar(db_url, threshold_of(school_id)) is None


async def test_bad_thresholds_and_other_roles_change_nothing(client: Any, demo: dict[str, Any],
                                                             db_url: str) -> None:
    school_id = demo["schools"][0]["school_id"]
    admin = await as_role(client, demo, "admin")
    await admin.post("/admin/settings", {**GOOD, "low_balance_threshold": "10"})
    assert await scalar(db_url, threshold_of(school_id)) == 1000
    for bad in ("-1", "1.234", "ten"):
        resp = await admin.post("/admin/settings", {**GOOD, "low_balance_threshold": bad})
        assert resp.status == 303, bad
        assert await scalar(db_url, threshold_of(school_id)) == 1000, bad
    for role in ("manager", "viewer"):
        other = await as_role(client, demo, role)
        refused = await other.post("/admin/settings", {**GOOD, "low_balance_threshold": "1"})
        assert refused.status == 403, role
    no_csrf = await admin.post("/admin/settings", {**GOOD, "low_balance_threshold": "1"},
                               csrf=False)
    assert no_csrf.status in (400, 403)
    assert await scalar(db_url, threshold_of(school_id)) == 1000
