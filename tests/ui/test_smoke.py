"""``pos-terminal --smoke-test``'s checks load the real files, so a bundle or wheel that forgot
one is caught (the end-to-end runs are tests/test_release_wheel.py and test_release_bundle.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from terminal.ui import i18n, smoke, sound
from tests.ui.i18n_support import build_catalogues


def test_checks_load_the_translations_and_sounds_of_the_tree() -> None:
    build_catalogues()
    assert smoke.checks() == {"translations": {"ar": True},
                              "sounds": {"approved": True, "refused": True,
                                         "restricted": True}}


def test_checks_say_which_file_is_missing_or_broken(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    build_catalogues()
    (tmp_path / "translations").mkdir()
    (tmp_path / "translations" / "terminal_ar.qm").write_bytes(b"not a catalogue")
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    shutil.copy(sound.SOUNDS / "approved.wav", sounds / "approved.wav")
    (sounds / "refused.wav").write_bytes(b"RIFF")  # cut short
    monkeypatch.setattr(i18n, "TRANSLATIONS_DIR", tmp_path / "translations")
    monkeypatch.setattr(sound, "SOUNDS", sounds)
    sound._wav.cache_clear()
    try:
        assert smoke.checks() == {"translations": {"ar": False},
                                  "sounds": {"approved": True, "refused": False,
                                             "restricted": False}}
    finally:
        sound._wav.cache_clear()
