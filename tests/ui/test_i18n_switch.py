"""Switching the till's language: Qt's translator, a mirrored layout, a font with Arabic
letters, and the choice on the login screen kept for this terminal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from terminal.core import Terminal
from terminal.ui import i18n
from terminal.ui.login_view import LoginView
from tests.ui.conftest import offline_terminal, wallet
from tests.ui.i18n_support import build_catalogues


@pytest.fixture(scope="module", autouse=True)
def _catalogues() -> None:
    build_catalogues()


@pytest.fixture(autouse=True)
def _english_after(qapp: QApplication) -> Iterator[None]:
    yield
    i18n.switch(qapp, "en")
    QApplication.processEvents()


@pytest.fixture
def term(tmp_path: Path) -> Iterator[Terminal]:
    t = offline_terminal(tmp_path / "t", "http://127.0.0.1:9", [wallet("w1", "Sara", 1000)], [])
    yield t
    t.close()


def test_arabic_mirrors_the_layout_and_translates(qtbot, qapp: QApplication,
                                                  term: Terminal) -> None:
    view = LoginView(term)
    qtbot.addWidget(view)
    view.reload()
    assert view.title.text() == "Who is selling?"
    assert i18n.switch(qapp, "ar") == "ar"
    QApplication.processEvents()  # LanguageChange is posted, then delivered
    assert qapp.layoutDirection() == Qt.LayoutDirection.RightToLeft
    assert view.isRightToLeft()
    assert view.title.text() == "من يبيع الآن؟"
    assert view.ok_button.text() == "موافق"
    # the keypad keeps 1 2 3 from the left, as on phones and card terminals
    assert not view.ok_button.isRightToLeft()
    if i18n.font_family("ar") != "Noto Sans Arabic":
        pytest.skip("Noto Sans Arabic not installed: apt-get install fonts-noto-core "
                    "(packaging/dev does)")
    assert qapp.font().family() == "Noto Sans Arabic"

    assert i18n.switch(qapp, "en") == "en"
    QApplication.processEvents()
    assert qapp.layoutDirection() == Qt.LayoutDirection.LeftToRight
    assert not view.isRightToLeft()
    assert view.title.text() == "Who is selling?"


def test_a_message_on_screen_is_redrawn_in_the_new_language(qtbot, qapp: QApplication,
                                                             term: Terminal) -> None:
    view = LoginView(term)
    qtbot.addWidget(view)
    view._done("cash1", "Amal", False, None)  # a wrong PIN, as the worker reports it
    assert view.message.text() == "Wrong PIN. Try again."
    i18n.switch(qapp, "ar")
    QApplication.processEvents()
    assert view.message.text() == "الرمز السري خاطئ. حاول مجددًا."


def test_unknown_or_missing_language_falls_back_to_english(qapp: QApplication) -> None:
    assert i18n.normalise("ar_SA") == "ar"
    assert i18n.normalise("AR") == "ar"
    assert i18n.normalise("fr") == "en"
    assert i18n.normalise(None) == "en"
    assert i18n.switch(qapp, "de") == "en"
    assert qapp.layoutDirection() == Qt.LayoutDirection.LeftToRight


def test_login_switch_is_kept_for_this_terminal(qtbot, qapp: QApplication,
                                                tmp_path: Path) -> None:
    """Chosen on the login screen, applied at once, stored, and applied again when the app
    starts anew on the same data directory."""
    from terminal.app import AppOptions, create_window
    from terminal.readers.simulated import SimulatedReader

    data = tmp_path / "till"
    first = offline_terminal(data, "http://127.0.0.1:9", [wallet("w1", "Sara", 1000)], [])
    window = create_window(data, AppOptions(), terminal=first, reader=SimulatedReader())
    qtbot.addWidget(window)
    window.show_login()
    buttons = window.login_view.language_buttons
    assert buttons["en"].isChecked() and not buttons["ar"].isChecked()
    assert buttons["ar"].text() == "العربية" and buttons["en"].text() == "English"
    buttons["ar"].click()
    QApplication.processEvents()
    assert qapp.layoutDirection() == Qt.LayoutDirection.RightToLeft
    assert window.login_view.title.text() == "من يبيع الآن؟"
    assert buttons["ar"].isChecked() and not buttons["en"].isChecked()
    assert buttons["ar"].text() == "العربية"  # each button stays in its own language
    assert first.local_settings().language == "ar"
    window.close()
    first.close()

    i18n.switch(qapp, "en")  # as a fresh process would start
    QApplication.processEvents()
    again = Terminal(data)
    restarted = create_window(data, AppOptions(), terminal=again, reader=SimulatedReader())
    qtbot.addWidget(restarted)
    QApplication.processEvents()
    try:
        assert i18n.current() == "ar"
        assert qapp.layoutDirection() == Qt.LayoutDirection.RightToLeft
        assert restarted.login_view.title.text() == "من يبيع الآن؟"
        assert restarted.login_view.language_buttons["ar"].isChecked()
        restarted.login_view.language_buttons["en"].click()
        QApplication.processEvents()
        assert again.local_settings().language == "en"
        assert restarted.login_view.title.text() == "Who is selling?"
    finally:
        restarted.close()
        again.close()
