"""The settings table in docs/server.md lists every server setting (declared once in config)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from sync_server.config import ServerConfig

DOC = Path(__file__).resolve().parent.parent / "docs" / "server.md"


def test_every_setting_is_documented_with_its_variable() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [f.name for f in fields(ServerConfig)
               if f"| `{f.name}` | `{f.metadata['env']}` |" not in text]
    assert missing == []
