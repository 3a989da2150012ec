"""The Arabic catalogue is complete: every string the till's code marks for translation is in
terminal_ar.ts, finished, with the same placeholders; every refusal the core can give and
every banner has a translated sentence in the UI's tables (terminal/ui/messages.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from terminal.selling.rules import MESSAGES
from terminal.ui import i18n, messages
from tests.ui.i18n_support import ROOT, read_ts

TS = i18n.ts_path("ar")
PLACEHOLDER = re.compile(r"%\d+|\{[a-z_]+\}")


def test_no_unfinished_or_empty_translation() -> None:
    entries = read_ts(TS)
    assert len(entries) > 50
    bad = [(ctx, src) for (ctx, src), (text, kind) in entries.items()
           if kind in ("unfinished", "vanished", "obsolete") or not text.strip()]
    assert bad == [], f"{len(bad)} strings not translated in {TS.name}: {bad[:5]}"


def test_translations_keep_every_placeholder() -> None:
    wrong = [(src, text) for (_ctx, src), (text, _kind) in read_ts(TS).items()
             if sorted(PLACEHOLDER.findall(src)) != sorted(PLACEHOLDER.findall(text))]
    assert wrong == []


def test_arabic_translations_are_arabic() -> None:
    """A source string pasted as its own translation would pass the checks above."""
    arabic = re.compile("[\u0600-\u06ff]")
    latin_only = [src for (_ctx, src), (text, _kind) in read_ts(TS).items()
                  if not arabic.search(text)]
    assert latin_only == []


def test_committed_ts_has_every_string_of_the_code(tmp_path: Path) -> None:
    """lupdate over the code, into a copy: nothing it finds may be missing from the
    committed file (a new tr() string needs 'packaging/i18n update' and a translation)."""
    lupdate = ROOT / ".venv" / "bin" / "pyside6-lupdate"
    tool = str(lupdate) if lupdate.exists() else shutil.which("pyside6-lupdate")
    if tool is None:
        pytest.skip("pyside6-lupdate not found: install the project (packaging/dev test)")
    copy = tmp_path / "terminal_ar.ts"
    shutil.copy(TS, copy)
    sources = sorted(str(p) for p in (ROOT / "terminal" / "ui").glob("*.py"))
    subprocess.run([tool, "-silent", "-locations", "none", *sources, "-ts", str(copy)],
                   check=True, timeout=120)
    committed = read_ts(TS)
    found = read_ts(copy)
    live = {key for key, (_text, kind) in found.items() if kind not in ("vanished", "obsolete")}
    missing = sorted(live - committed.keys())
    assert missing == [], (f"{len(missing)} strings in terminal/ui are not in {TS.name} "
                           f"(run packaging/i18n update, then translate): {missing[:5]}")


def test_every_refusal_of_the_core_has_a_translated_sentence() -> None:
    finished = {src for (ctx, src), (text, kind) in read_ts(TS).items()
                if ctx == "Refusals" and text.strip() and kind is None}
    for key, english in MESSAGES.items():
        assert key in messages.REFUSALS, f"refusal {key!r} has no entry in messages.REFUSALS"
        assert messages.REFUSALS[key] == english, (
            f"the till's English for {key!r} differs from the core's: update messages.py "
            "and the Arabic")
        assert english in finished, f"refusal {key!r} has no finished Arabic translation"


def test_every_banner_has_a_translated_sentence() -> None:
    finished = {src for (ctx, src), (text, kind) in read_ts(TS).items()
                if ctx == "Alerts" and text.strip() and kind is None}
    for key, english in messages.ALERTS.items():
        assert english in finished, f"alert {key!r} has no finished Arabic translation"
    for key, english in messages.TILL.items():
        assert ("Till", english) in read_ts(TS), f"till message {key!r} not in the catalogue"
