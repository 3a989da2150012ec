"""Shared by the till's language tests: the compiled catalogue, the .ts read as data, and
the app switched back to English after each test (the language is process-wide state)."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from terminal.ui import i18n

ROOT = Path(__file__).resolve().parents[2]


def build_catalogues() -> None:
    """What the install step does (packaging/dev -> packaging/i18n build)."""
    subprocess.run([str(ROOT / "packaging" / "i18n"), "build"], check=True, cwd=ROOT,
                   timeout=120)
    assert i18n.qm_path("ar").is_file(), "packaging/i18n build made no terminal_ar.qm"


def read_ts(path: Path) -> dict[tuple[str, str], tuple[str, str | None]]:
    """(context, source) -> (translation, its type attribute) for every message."""
    out: dict[tuple[str, str], tuple[str, str | None]] = {}
    for context in ET.parse(path).getroot().findall("context"):
        name = context.findtext("name") or ""
        for message in context.findall("message"):
            translation = message.find("translation")
            assert translation is not None
            out[(name, message.findtext("source") or "")] = (
                translation.text or "", translation.get("type"))
    return out
