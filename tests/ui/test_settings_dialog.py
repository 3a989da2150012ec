"""The till's own settings (F10): volume, mute and language, kept in the core's local
settings, applied to the sound player and the app at once, and still there after a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialogButtonBox
from pytestqt.qtbot import QtBot

from terminal.app import create_window
from terminal.core import Terminal
from terminal.readers.simulated import SimulatedReader
from terminal.ui import i18n
from tests.ui.conftest import screenshot
from tests.ui.till import RecordingPlayer, open_till


@pytest.fixture
def english_after(qapp: QApplication) -> Iterator[None]:
    yield
    i18n.switch(qapp, "en")
    QApplication.processEvents()


def test_settings_change_volume_mute_and_language(qtbot: QtBot, tmp_path: Path,
                                                  english_after: None) -> None:
    from tests.ui.i18n_support import build_catalogues

    build_catalogues()
    player = RecordingPlayer()
    till = open_till(qtbot, tmp_path, player=player)
    window = till.window
    assert player.volume == 70 and not player.muted  # the core's defaults
    qtbot.keyClick(till.sale, Qt.Key.Key_F10)
    dialog = window.settings_dialog
    assert dialog is not None and dialog.isVisible()

    screenshot(dialog, "settings")
    dialog.volume.setValue(40)
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    assert player.played == ["approved"]  # tried at the slider's volume...
    assert player.volume == 70            # ...without saving it
    dialog.muted.setChecked(True)
    dialog.language.setCurrentIndex(dialog.language.findData("ar"))
    save = dialog.buttons.button(QDialogButtonBox.StandardButton.Save)
    qtbot.mouseClick(save, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.settings_dialog is None)

    saved = till.terminal.local_settings()
    assert (saved.sound_volume, saved.sound_muted, saved.language) == (40, True, "ar")
    qtbot.waitUntil(lambda: player.muted and player.volume == 40)
    qtbot.waitUntil(lambda: i18n.current() == "ar")
    assert QApplication.layoutDirection() == Qt.LayoutDirection.RightToLeft
    till.add("water")
    till.tap("sara4", "approved")
    assert player.played == ["approved"]  # muted now
    window.shutdown()
    window.close()
    till.terminal.close()

    # a restart of the app on the same data directory comes back the same way
    i18n.switch(QApplication.instance(), "en")  # type: ignore[arg-type]
    again = Terminal(tmp_path / "till")
    player2 = RecordingPlayer()
    window2 = create_window(tmp_path / "till", terminal=again, reader=SimulatedReader(),
                            player=player2)
    qtbot.addWidget(window2)
    assert i18n.current() == "ar"
    assert player2.muted and player2.volume == 40
    window2.shutdown()


def test_a_bad_value_is_refused_in_words_and_changes_nothing(qtbot: QtBot,
                                                             tmp_path: Path) -> None:
    till = open_till(qtbot, tmp_path)
    qtbot.keyClick(till.sale, Qt.Key.Key_F10)
    dialog = till.window.settings_dialog
    assert dialog is not None
    dialog.language.addItem("Klingon", "tlh")
    dialog.language.setCurrentIndex(dialog.language.findData("tlh"))
    dialog.save()
    assert dialog.isVisible() and dialog.message.text()
    assert till.terminal.local_settings().language == "en"
    dialog.reject()
    till.window.shutdown()
