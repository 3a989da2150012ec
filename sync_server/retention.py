"""Which backups in a backup directory to keep: the newest of each of the last N days that
have a backup, and the newest of each of the last M ISO weeks (``--keep-daily 14
--keep-weekly 8`` keeps about two weeks of dailies and two months of weeklies).

Counting days *with a backup* rather than calendar days means a server that was off for a
week does not wake up and delete its last good copies. Only files named the way
``pos-server backup --to-dir`` names them are ever considered; anything else in the directory
is left alone. The newest backup is always kept, whatever the numbers say.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

_NAME = re.compile(r"^pos-server-(\d{8}T\d{6}Z)\.(db|dump)$")
SUFFIX = {"sqlite": "db", "postgresql": "dump"}


def backup_name(database: str, at: datetime) -> str:
    """``pos-server-20261127T021500Z.db``: sorts by time, says which database made it."""
    return f"pos-server-{at.astimezone(UTC):%Y%m%dT%H%M%SZ}.{SUFFIX[database]}"


def taken_at(path: Path) -> datetime | None:
    match = _NAME.match(path.name)
    if not match:
        return None
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def to_prune(paths: list[Path], keep_daily: int, keep_weekly: int) -> list[Path]:
    """The backups among ``paths`` that the rule does not keep, oldest first."""
    if keep_daily < 0 or keep_weekly < 0:
        raise ValueError("--keep-daily and --keep-weekly count backups to keep (0 or more)")
    dated = sorted(((t, p) for p in paths if (t := taken_at(p)) is not None), reverse=True)
    keep: set[Path] = {dated[0][1]} if dated else set()
    days: set[object] = set()
    weeks: set[object] = set()
    for at, path in dated:  # newest first: the first seen of a day or week is its newest
        day, week = at.date(), at.isocalendar()[:2]
        if day not in days and len(days) < keep_daily:
            days.add(day)
            keep.add(path)
        if week not in weeks and len(weeks) < keep_weekly:
            weeks.add(week)
            keep.add(path)
    return [p for _, p in reversed(dated) if p not in keep]


def prune(directory: Path, keep_daily: int, keep_weekly: int) -> list[Path]:
    """Delete what :func:`to_prune` names; returns the deleted paths."""
    doomed = to_prune([p for p in directory.iterdir() if p.is_file()], keep_daily, keep_weekly)
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed
