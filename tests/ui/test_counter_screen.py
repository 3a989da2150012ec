"""The counter screen at arm's length: the answer band's size and type, RESTRICTED in its own
colour and sound (offline), notices on the main panel, school time, and screenshots of the
four answers in English and Arabic for a person to look at."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QLabel
from pytestqt.qtbot import QtBot

from shared.money import format_minor
from terminal.changes import Change
from terminal.readers.base import ReaderState, StateChange
from terminal.store import state
from terminal.ui import i18n, theme
from terminal.ui.sound import AplayPlayer
from tests.ui.conftest import ARTIFACTS, screenshot
from tests.ui.till import RecordingPlayer, Till, open_till


def plain(text: str) -> str:
    """Without the Unicode isolates that keep amounts whole inside Arabic sentences."""
    return text.replace("\u2068", "").replace("\u2069", "")


def _px(label: QLabel) -> int:
    return label.font().pixelSize()


@pytest.mark.parametrize("size", [(1024, 600), (1280, 800)])
def test_the_answer_takes_a_third_of_the_window_in_big_type(qtbot: QtBot, tmp_path: Path,
                                                            size: tuple[int, int]) -> None:
    till = open_till(qtbot, tmp_path, size=size)
    till.add("water", 2)
    till.tap("sara4", "approved")
    QApplication.processEvents()
    panel, central = till.panel, till.window.centralWidget()
    assert (till.window.width(), till.window.height()) == size
    share = panel.width() * panel.height() / (central.width() * central.height())
    assert share >= 1 / 3, f"answer band covers {share:.0%} of the window at {size}"
    assert _px(panel.headline) >= 48
    assert _px(panel.name) >= 28 and _px(panel.amounts) >= 28
    # the verdict, the name and the balance are whole, not cut at the band's edge
    for label in (panel.headline, panel.name, panel.amounts):
        assert label.sizeHint().width() <= label.width(), label.text()
    assert panel.headline.text() == "APPROVED"
    assert panel.name.text() == "Sara K."
    assert plain(panel.who.text()) == "Grade 4 \u00b7 Homeroom 4A"
    assert plain(panel.amounts.text()) == f"Balance {format_minor(4000 - 300, 'SAR')}"
    assert f"Paid {format_minor(300, 'SAR')}" in plain(panel.detail.text())
    till.window.shutdown()


def test_a_restricted_item_is_refused_offline_in_its_own_colour_and_sound(
        qtbot: QtBot, tmp_path: Path) -> None:
    player = RecordingPlayer()
    till = open_till(qtbot, tmp_path, player=player)
    term = till.terminal
    state.record_contact(term.db, datetime.now(UTC), ok=False)  # the network is gone
    till.window.redraw(Change.SYNC)
    assert till.window.status_bar.online is False

    # At tap time: the cookie is already in the cart; no sale is made, the cart stays.
    till.add("water")
    till.add("cookie")
    till.tap("maryam", "restricted")
    panel = till.panel
    assert panel.headline.text() == "RESTRICTED"
    assert "Peanut cookie" in panel.detail.text() and "peanut" in panel.detail.text()
    assert theme.RESTRICTED in panel.styleSheet()
    assert theme.RESTRICTED not in (theme.REFUSED, theme.APPROVED)
    assert panel.outcome.code == "restricted_item"
    assert player.played[-1] == "restricted"
    assert term.history() == [] and till.sale.cart.total == 150 + 250

    # After the tap, while she is at the counter: a blocked item is refused as it is added
    # (category Meals), the allowed one is added, and her sale goes through without them.
    till.sale.cart.clear()
    qtbot.wait(1100)  # the same bracelet again, after the de-duplication window
    till.tap("maryam", "info")  # a balance check starts her order
    painted = panel.paint_count
    till.add("rice")
    qtbot.waitUntil(lambda: panel.state == "restricted" and panel.paint_count > painted)
    assert "Rice & chicken" in panel.detail.text() and "Meals" in panel.detail.text()
    assert till.sale.cart.is_empty()
    assert player.played[-1] == "restricted"
    till.add("juice")
    assert till.sale.cart.total == 300
    qtbot.wait(1100)  # the same bracelet again, after the de-duplication window
    till.tap("maryam", "approved")
    sale = term.history(1)[0]
    assert sale.wallet_id == "w-maryam" and sale.total == 300 and sale.offline
    assert player.played[-1] == "approved"
    assert "saved offline" in panel.detail.text()
    till.window.shutdown()


def test_refused_and_approved_sounds_and_mute_from_the_settings(qtbot: QtBot,
                                                                tmp_path: Path) -> None:
    player = RecordingPlayer()
    till = open_till(qtbot, tmp_path, player=player)
    till.add("rice")
    till.tap("omar", "refused")  # 2.00 SAR for a 15.00 SAR meal
    assert player.played == ["refused"]
    till.sale.cart.clear()
    till.add("water")
    till.tap("omar", "approved")
    assert player.played == ["refused", "approved"]
    till.terminal.update_local_settings(sound_muted=True)
    qtbot.waitUntil(lambda: player.muted)  # applied on the SETTINGS change, not by polling
    till.add("water")
    till.tap("sara4", "approved")
    assert player.played == ["refused", "approved"]  # muted: asked, nothing played
    assert player.requested[-1] == "approved"
    till.terminal.update_local_settings(sound_muted=False, sound_volume=35)
    qtbot.waitUntil(lambda: not player.muted and player.volume == 35)
    till.window.shutdown()


def test_a_daily_limit_refusal_says_how_much_is_left_today(qtbot: QtBot,
                                                            tmp_path: Path) -> None:
    till = open_till(qtbot, tmp_path)
    till.add("juice")
    till.tap("huda", "approved")  # 3.00 of her 5.00 a day
    till.add("juice")
    till.tap("huda", "refused")
    detail = plain(till.panel.detail.text())
    assert detail == (f"Daily limit: {format_minor(200, 'SAR')} left today of "
                      f"{format_minor(500, 'SAR')}; this sale is {format_minor(300, 'SAR')}.")
    assert till.panel.outcome.code == "daily_limit"
    till.window.shutdown()


@pytest.mark.skipif(shutil.which("aplay") is None,
                    reason="aplay missing: install Debian alsa-utils (packaging/dev does it)")
def test_the_window_really_plays_through_alsa(qtbot: QtBot, tmp_path: Path) -> None:
    sink = tmp_path / "played.raw"
    player = AplayPlayer(f"file:FILE={sink},FORMAT=raw")
    till = open_till(qtbot, tmp_path, player=player)
    till.add("water")
    till.tap("sara6", "approved")
    player.wait()
    assert player.played == 1 and player.failures == 0
    assert sink.stat().st_size > 10_000  # a fraction of a second of 16-bit samples at 22 kHz
    till.window.shutdown()


def test_lost_reader_and_taps_while_locked_show_on_the_main_panel(qtbot: QtBot,
                                                                 tmp_path: Path) -> None:
    player = RecordingPlayer()
    till = open_till(qtbot, tmp_path, player=player)
    window = till.window
    till.add("water")
    window.reader_bridge.sink(StateChange(ReaderState.DISCONNECTED, "unplugged"))
    qtbot.waitUntil(lambda: till.panel.state == "notice")
    assert "reader is not connected" in till.panel.name.text()
    assert "by name (F3)" in till.panel.detail.text()
    assert theme.WARNING in till.panel.styleSheet()
    window.reader_bridge.sink(StateChange(ReaderState.CONNECTED, "back"))
    qtbot.waitUntil(lambda: till.panel.state == "waiting")

    window.lock()
    assert window.current_view() is window.login_view
    till.tap("sara4")
    qtbot.waitUntil(lambda: "till is locked" in window.login_view.notice_text())
    assert player.played == ["refused"]
    assert till.terminal.history() == []  # nothing charged
    window.reader_bridge.sink(StateChange(ReaderState.DISCONNECTED, "unplugged"))
    qtbot.waitUntil(lambda: "reader is not connected" in window.login_view.notice_text())
    screenshot(window, "login-notices")
    window.shutdown()


def test_the_till_shows_school_time_without_reading_the_store(qtbot: QtBot,
                                                              tmp_path: Path) -> None:
    till = open_till(qtbot, tmp_path, log_in=False, start_sync=False)
    window = till.window
    window.refresh_status()
    window._tick_clock()
    riyadh = datetime.now(UTC) + timedelta(hours=3)  # Asia/Riyadh has no summer time
    shown = window.status_bar.clock.text()
    allowed = {riyadh.strftime("%H:%M"), (riyadh - timedelta(minutes=1)).strftime("%H:%M")}
    assert shown in allowed
    # the next tick is due on the next minute, not every second
    assert window._clock.isSingleShot() and 0 < window._clock.remainingTime() <= 60_100
    # the history shows a sale's time in school time too, not the machine's zone (UTC here)
    till.terminal.record_sale("cash1", [("water", 1)], uid="04AA000000000003")
    window.show_history()
    row = window.history_view.model.rows[0]
    assert window.history_view.model.text(row, 1)[:5] in allowed | {
        (riyadh + timedelta(minutes=1)).strftime("%H:%M")}
    window.shutdown()


# ------------------------------------------------------------------ screenshots

@pytest.fixture
def english_after(qapp: QApplication) -> Iterator[None]:
    yield
    i18n.switch(qapp, "en")
    QApplication.processEvents()


def _shot(till: Till, name: str) -> Path:
    QApplication.processEvents()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    assert till.window.grab().save(str(path))
    return path


@pytest.mark.parametrize("language", ["en", "ar"])
def test_screenshots_of_the_four_answers(qtbot: QtBot, tmp_path: Path, qapp: QApplication,
                                         english_after: None, language: str) -> None:
    if language != "en":
        from tests.ui.i18n_support import build_catalogues

        build_catalogues()
    till = open_till(qtbot, tmp_path, language=language)
    window = till.window
    assert i18n.current() == language
    assert window.isRightToLeft() == (language == "ar")
    saved = []
    till.add("water", 2)
    till.tap("sara4", "approved")
    saved.append(_shot(till, f"counter-{language}-approved"))
    till.add("rice")
    till.tap("omar", "refused")
    saved.append(_shot(till, f"counter-{language}-refused"))
    till.sale.cart.clear()
    till.add("cookie")
    till.tap("maryam", "restricted")
    saved.append(_shot(till, f"counter-{language}-restricted"))
    till.sale.cart.clear()
    state.record_contact(till.terminal.db, datetime.now(UTC), ok=False)
    window.redraw(Change.SYNC)
    till.add("juice")
    till.tap("sara6", "approved")
    assert window.banner.isVisible()
    saved.append(_shot(till, f"counter-{language}-offline"))
    assert (window.width(), window.height()) == (1024, 600)
    print("\nscreenshots:", *saved, sep="\n  ")
    window.shutdown()
