"""Cashier login by PIN, checked against the snapshot's hashes (so it works offline).

The PIN is hashed with argon2, which takes tens of milliseconds on purpose, so the check runs
on a worker thread. The PIN never leaves this widget except into :meth:`Terminal.verify_pin`
and is never logged.

The language switch lives here, on the first screen a cashier sees: two buttons, each
labelled in its own language, so a cashier who cannot read the current one still finds theirs.
The choice is this terminal's (stored with its local settings) and applies at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from terminal.core import Terminal
from terminal.pins import PinLockout
from terminal.ui import i18n, theme
from terminal.ui.workers import run_in_background


class LoginView(QWidget):
    logged_in = Signal(str, str)  # cashier_id, name
    language_changed = Signal(str)  # the language now in force ("en", "ar")

    def __init__(self, terminal: Terminal, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.terminal = terminal
        self.busy = False
        # A PIN lockout counts down on screen each second and ends by itself at zero; the
        # timer reads the clock only (no database), and runs only while a lockout lasts.
        self.locked_cashier: str | None = None
        self._locked_until = 0.0
        self._countdown = QTimer(self)
        self._countdown.setInterval(1000)
        self._countdown.timeout.connect(self._tick)
        # What the message line says, as a function of the current language, so a language
        # switch redraws it (see retranslate); "" when it says nothing.
        self._message: Callable[[], str] = str
        outer = QHBoxLayout(self)
        outer.setContentsMargins(40, 8, 40, 8)
        outer.setSpacing(30)
        left = QVBoxLayout()
        # The title shares its row with the language switch: the keypad column must keep
        # fitting a 600 px screen under two banners.
        header = QHBoxLayout()
        self.title = QLabel()
        theme.set_role(self.title, "title")
        header.addWidget(self.title)
        header.addStretch(1)
        self.language_buttons: dict[str, QPushButton] = {}
        for code in i18n.LANGUAGES:
            button = QPushButton(i18n.NATIVE_NAMES[code])  # never translated, on purpose
            button.setCheckable(True)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.clicked.connect(lambda _=False, c=code: self.choose_language(c))
            header.addWidget(button)
            self.language_buttons[code] = button
        left.addLayout(header)
        self.cashiers = QListWidget()
        self.cashiers.setStyleSheet("QListWidget::item { min-height: 48px; padding: 4px; }")
        self.cashiers.currentRowChanged.connect(self._focus_pin)
        left.addWidget(self.cashiers, 1)
        outer.addLayout(left, 1)

        right = QVBoxLayout()
        self.pin_label = QLabel()
        right.addWidget(self.pin_label)
        self.pin = QLineEdit()
        self.pin.setEchoMode(QLineEdit.EchoMode.Password)
        self.pin.setMaxLength(12)
        self.pin.setStyleSheet("font-size: 20pt;")
        self.pin.returnPressed.connect(self.submit)
        right.addWidget(self.pin)
        # A keypad reads 1 2 3 from the left in Arabic too (as on phones and card
        # terminals there), so the pad alone is not mirrored.
        pad_box = QWidget()
        pad_box.setLayoutDirection(Qt.LayoutDirection.LeftToRight)
        pad = QGridLayout(pad_box)
        pad.setContentsMargins(0, 0, 0, 0)
        pad.setVerticalSpacing(8)  # the pad and two problem banners must fit in 600 px
        pad.setHorizontalSpacing(12)
        keys = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "\u232b", "0", "OK"]
        for i, key in enumerate(keys):
            button = QPushButton(key)
            button.setMinimumSize(80, 52)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            if key == "OK":
                self.ok_button = button
                theme.set_role(button, "primary")
                button.clicked.connect(self.submit)
            elif key == "\u232b":
                button.clicked.connect(self.pin.backspace)
            else:
                button.clicked.connect(lambda _=False, k=key: self.pin.insert(k))
            pad.addWidget(button, i // 3, i % 3)
        right.addWidget(pad_box)
        self.message = QLabel()
        self.message.setWordWrap(True)
        # Measured at a sane width, so a long message (a PIN lockout) cannot make the view,
        # and with it the window, taller than the 600 px screen.
        self.message.setMinimumWidth(300)
        theme.set_role(self.message, "error")
        right.addWidget(self.message)
        right.addStretch(1)
        outer.addLayout(right, 1)
        self.retranslate()

    # ------------------------------------------------------------------ language

    def retranslate(self) -> None:
        self.title.setText(self.tr("Who is selling?"))
        self.pin_label.setText(self.tr("PIN"))
        self.ok_button.setText(self.tr("OK"))
        self.message.setText(self._message())
        for code, button in self.language_buttons.items():
            button.setChecked(code == i18n.current())

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    def say(self, message: Callable[[], str]) -> None:
        """Show ``message()`` on the message line, and again after a language switch."""
        self._message = message
        self.message.setText(message())

    def choose_language(self, language: str) -> None:
        """Switch the whole app now and remember the choice for this terminal."""
        used = i18n.choose(self.terminal, language)
        for code, button in self.language_buttons.items():
            button.setChecked(code == used)
        self.language_changed.emit(used)
        self.pin.setFocus()

    def _focus_pin(self, _row: int) -> None:
        if self.locked_cashier is not None and self.selected_id() != self.locked_cashier:
            self._end_lockout()  # another cashier may try: the lockout is per cashier
        self.pin.setFocus()

    def start_lockout(self, cashier_id: str, seconds: int) -> None:
        self.locked_cashier = cashier_id
        self._locked_until = time.monotonic() + seconds
        self._countdown.start()
        self._tick()

    def lockout_left(self) -> int:
        """Whole seconds until the locked cashier may try again (0: not locked)."""
        if self.locked_cashier is None:
            return 0
        return max(0, math.ceil(self._locked_until - time.monotonic() - 0.05))

    def _tick(self) -> None:
        left = self.lockout_left()
        if left <= 0:
            self._end_lockout()
            return
        self.say(lambda: self.tr("Too many wrong PINs. Try again in %1 s or ask another "
                                 "cashier to log in.").replace("%1", str(left)))

    def _end_lockout(self) -> None:
        if self.locked_cashier is None:
            return
        self.locked_cashier = None
        self._countdown.stop()
        self.say(str)

    def reload(self, select_id: str | None = None) -> None:
        """Cashiers come from the snapshot; reload after each sync (a new cashier appears)."""
        current = select_id or self.selected_id()
        self.cashiers.clear()
        for cashier in self.terminal.cashiers():
            item = QListWidgetItem(cashier.name)
            item.setData(Qt.ItemDataRole.UserRole, cashier.cashier_id)
            self.cashiers.addItem(item)
            if cashier.cashier_id == current:
                self.cashiers.setCurrentItem(item)
        if self.cashiers.currentRow() < 0 and self.cashiers.count():
            self.cashiers.setCurrentRow(0)
        if not self.cashiers.count():
            self.say(lambda: self.tr("No cashiers on this terminal yet: waiting for the "
                                     "first sync."))

    def selected_id(self) -> str | None:
        item = self.cashiers.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def select(self, cashier_id: str) -> None:
        for row in range(self.cashiers.count()):
            if self.cashiers.item(row).data(Qt.ItemDataRole.UserRole) == cashier_id:
                self.cashiers.setCurrentRow(row)

    def submit(self) -> None:
        cashier_id = self.selected_id()
        pin = self.pin.text()
        if self.busy or cashier_id is None or not pin:
            return
        if cashier_id == self.locked_cashier and self.lockout_left() > 0:
            self.pin.clear()  # still locked out: the countdown on screen says how long
            return
        name = self.cashiers.currentItem().text()
        self.busy = True
        self.say(lambda: self.tr("Checking\u2026"))
        run_in_background(lambda: self.terminal.verify_pin(cashier_id, pin),
                          lambda ok, error: self._done(cashier_id, name, ok, error),
                          terminal=self.terminal)

    def _done(self, cashier_id: str, name: str, ok: bool | None,
              error: BaseException | None) -> None:
        self.busy = False
        self.pin.clear()
        if isinstance(error, PinLockout):
            self.start_lockout(cashier_id, error.seconds)
            return
        if error is not None or not ok:
            if error is None:
                self.say(lambda: self.tr("Wrong PIN. Try again."))
            else:
                self.say(lambda: self.tr("Could not check the PIN: %1").replace(
                    "%1", str(error)))
            if error is None:
                try:  # this wrong PIN may have started a lockout: count it down at once
                    self.terminal.pin_attempts.check(cashier_id)
                except PinLockout as lockout:
                    self.start_lockout(cashier_id, lockout.seconds)
            return
        self._end_lockout()
        self.say(str)
        self.logged_in.emit(cashier_id, name)

    def showEvent(self, event: object) -> None:
        super().showEvent(event)  # type: ignore[arg-type]
        self.pin.setFocus()

    # ------------------------------------------------------------------ notices (C2)

    TAP_NOTICE_MS = 8000

    def _notice_label(self) -> QLabel:
        """An amber box above the cashier list, made the first time there is something to say
        (a bracelet tapped while locked, a lost reader): the screen the cashier is looking at,
        not only the status bar."""
        label: QLabel | None = getattr(self, "_notice", None)
        if label is None:
            label = QLabel()
            label.setWordWrap(True)
            label.setMinimumWidth(300)
            label.setStyleSheet(f"background: {theme.WARNING}; color: black; font-size: 16pt;"
                                " font-weight: bold; padding: 8px; border-radius: 6px;")
            outer = self.layout()
            item = outer.itemAt(0) if outer is not None else None
            column = item.layout() if item is not None else None
            if isinstance(column, QVBoxLayout):
                column.insertWidget(1, label)
            self._notice = label
            self._reader_notice: str | None = None
            self._tap_notice = False
            self._tap_timer = QTimer(self)
            self._tap_timer.setSingleShot(True)
            self._tap_timer.timeout.connect(self._end_tap_notice)
        return label

    def show_notice(self, text: str | None) -> None:
        """The reader's problem in words (``None``: the reader is back)."""
        if text is None and getattr(self, "_notice", None) is None:
            return
        self._notice_label()
        self._reader_notice = text
        self._draw_notice()

    def show_tap_while_locked(self) -> None:
        self._notice_label()
        self._tap_notice = True
        self._tap_timer.start(self.TAP_NOTICE_MS)
        self._draw_notice()

    def _end_tap_notice(self) -> None:
        self._tap_notice = False
        self._draw_notice()

    def notice_text(self) -> str:
        label: QLabel | None = getattr(self, "_notice", None)
        return label.text() if label is not None and label.isVisibleTo(self) else ""

    def _draw_notice(self) -> None:
        label = self._notice_label()
        lines = []
        if self._tap_notice:
            lines.append(self.tr("A bracelet was tapped, but this till is locked: nothing was "
                                 "charged. Log in, then tap again."))
        if self._reader_notice:
            lines.append(self._reader_notice)
        label.setText("\n".join(lines))
        label.setVisible(bool(lines))
