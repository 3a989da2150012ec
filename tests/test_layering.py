"""The core never imports Qt (DESIGN.md): a headless terminal, the CLI and the server must run
on a machine with no Qt libraries, and business rules must not hide in widgets."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QT_ALLOWED = ("terminal/ui/", "terminal/readers/", "terminal/app.py", "terminal/__main__.py")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_qt_outside_the_ui_layer() -> None:
    offenders = []
    for package in ("shared", "sync_server", "terminal"):
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith(QT_ALLOWED):
                continue
            if {"PySide6", "PyQt5", "PyQt6"} & _imports(path):
                offenders.append(rel)
    assert offenders == []


def test_shared_has_no_database_or_qt() -> None:
    forbidden = {"sqlalchemy", "sqlite3", "sqlite_utils", "asyncpg", "aiosqlite", "PySide6"}
    for path in (ROOT / "shared").rglob("*.py"):
        assert not (forbidden & _imports(path)), path
