"""Setting up a real installation from the command line: a school, then its first admins,
who can then log in to the console. Real CLI subprocesses against the test's database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from .conftest import login


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sync_server", *args], capture_output=True,
                          text=True, input=stdin, timeout=120, env=dict(os.environ))


async def test_create_school_and_admins_who_can_log_in(client: Any, db_url: str) -> None:
    made = cli("create-school", "--db", db_url, "--name", "Hilltop School", "--currency", "AED",
               "--timezone", "Asia/Dubai", "--json")
    assert made.returncode == 0, made.stderr
    school = json.loads(made.stdout)
    assert school["name"] == "Hilltop School" and school["school_id"].startswith("sch_")

    admin = cli("create-admin", "--db", db_url, "--email", "Head@Hilltop.example", "--role",
                "school_admin", "--school", school["school_id"], "--json")
    assert admin.returncode == 0, admin.stderr
    created = json.loads(admin.stdout)
    assert created["email"] == "head@hilltop.example" and len(created["password"]) >= 12
    viewer = cli("create-admin", "--db", db_url, "--email", "clerk@hilltop.example", "--role",
                 "school_viewer", "--school", school["school_id"], "--password-stdin",
                 stdin="correct horse battery staple\n")
    assert viewer.returncode == 0, viewer.stderr
    assert "password" not in viewer.stdout  # chosen by the operator: never echoed

    session = await login(client, "head@hilltop.example", created["password"])
    assert "Hilltop School" in await session.page("/admin/")
    await session.post("/admin/logout")
    session = await login(client, "clerk@hilltop.example", "correct horse battery staple")
    assert "Hilltop School" in await session.page("/admin/")


async def test_setup_mistakes_are_one_line_errors_and_change_nothing(
        client: Any, db_url: str, demo: dict[str, Any]) -> None:
    school_id = demo["schools"][0]["school_id"]
    taken = demo["schools"][0]["admin"]["email"]
    cases = [
        (["create-school", "--name", "X", "--currency", "riyal"], "not a currency code"),
        (["create-school", "--name", "X", "--timezone", "Mars/Olympus"], "unknown time zone"),
        (["create-school", "--name", "  "], "needs a name"),
        (["create-admin", "--email", taken, "--role", "school_admin", "--school", school_id],
         "already exists"),
        (["create-admin", "--email", "a@b.example", "--role", "school_admin", "--school",
          "sch_nope"], "no school"),
        (["create-admin", "--email", "a@b.example", "--role", "platform_admin", "--school",
          school_id], "platform admins have no school"),
        (["create-admin", "--email", "a@b.example", "--role", "school_viewer", "--school",
          school_id, "--password-stdin"], "at least 12 characters"),
    ]
    for args, words in cases:
        out = cli(*args, "--db", db_url, stdin="short\n")
        assert out.returncode == 1, (args, out.stdout, out.stderr)
        assert words in out.stderr and out.stderr.count("\n") == 1, (args, out.stderr)
    # Nothing was created: the short password's account cannot log in.
    await login(client, "a@b.example", "short", expect=401)
