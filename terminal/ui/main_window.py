"""The cashier app's window: banner on top, one screen in the middle, status bar below.

It wires the parts together and keeps them honest about threads: reader taps and sync reports
arrive through inboxes and are applied here on the GUI thread.

Redraw on change, not on a timer (Anki's model): the core tells its listeners what each
committed mutation changed (:class:`terminal.changes.Change`: a sale, a void, a sync result, a
snapshot, settings). The listener may run on the sync thread, so it only drops the flags into a
:class:`ThreadInbox`; on the GUI thread the flags that arrived together are merged and each
view that shows one of those parts is redrawn once. Nothing polls the store: the only timers
are the school clock (once a minute) and the PIN lockout countdown, which read the clock.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, tzinfo

from PySide6.QtCore import QEvent, QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QApplication, QMainWindow, QStackedWidget, QVBoxLayout, QWidget

from terminal.changes import Change
from terminal.core import Receipt, Terminal
from terminal.readers.base import BraceletReader, ReaderState
from terminal.readers.simulated import SimulatedReader
from terminal.settings import SYNC_INTERVAL_S
from terminal.sync.backoff import Backoff
from terminal.sync.cycle import SyncReport
from terminal.ui import i18n, messages
from terminal.ui.banner import Banner
from terminal.ui.counter import Counter, Outcome
from terminal.ui.demo_panel import DemoPanel
from terminal.ui.enroll_view import EnrollView
from terminal.ui.history_view import HistoryView
from terminal.ui.login_view import LoginView
from terminal.ui.lookup_dialog import LookupDialog
from terminal.ui.sale_view import SaleView
from terminal.ui.settings_dialog import SettingsDialog
from terminal.ui.sound import SilentPlayer, SoundPlayer
from terminal.ui.status_bar import StatusBar
from terminal.ui.workers import ReaderBridge, SyncBridge, ThreadInbox

log = logging.getLogger(__name__)

# Which answer plays which sound; a balance or a void is silent (nothing was refused or paid).
SOUNDS = {"approved": "approved", "refused": "refused", "restricted": "restricted",
          "notice": "refused"}
# What each part of the screen shows, by the changes that make it stale.
STATUS_CHANGES = (Change.SALES | Change.SYNC | Change.SETTINGS | Change.SNAPSHOT
                  | Change.ENROLLMENT)
CATALOG_CHANGES = Change.SNAPSHOT | Change.SETTINGS | Change.ENROLLMENT
HISTORY_CHANGES = Change.SALES | Change.SNAPSHOT | Change.SETTINGS


class MainWindow(QMainWindow):
    def __init__(self, terminal: Terminal, reader: BraceletReader, *,
                 sync_interval: float = SYNC_INTERVAL_S, backoff: Backoff | None = None,
                 server: str | None = None, enroll_code: str | None = None,
                 name: str | None = None, player: SoundPlayer | None = None) -> None:
        super().__init__()
        self.terminal = terminal
        self.reader = reader
        self.player = player or SilentPlayer()
        self._auto_enroll = bool(server and enroll_code)
        self.resize(1024, 600)

        self.counter = Counter(terminal, parent=self)
        self.reader_bridge = ReaderBridge(reader, self)
        self.sync = SyncBridge(terminal, interval=sync_interval, backoff=backoff, parent=self)

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.banner = Banner()
        layout.addWidget(self.banner)
        self.stack = QStackedWidget()
        layout.addWidget(self.stack, 1)
        self.status_bar = StatusBar()
        layout.addWidget(self.status_bar)
        self.setCentralWidget(central)

        self.enroll_view = EnrollView(terminal)
        self.enroll_view.prefill(server, enroll_code)
        if name:
            self.enroll_view.name.setText(name)
        self.login_view = LoginView(terminal)
        demo = isinstance(reader, SimulatedReader)
        self.sale_view = SaleView(self.counter, demo_reader=demo)
        self.history_view = HistoryView(terminal)
        for view in (self.enroll_view, self.login_view, self.sale_view, self.history_view):
            self.stack.addWidget(view)
        self.demo_panel = DemoPanel(terminal, reader, self) if isinstance(
            reader, SimulatedReader) else None
        self.lookup_dialog: LookupDialog | None = None
        self.settings_dialog: SettingsDialog | None = None
        self.reader_state = ReaderState.STOPPED.value
        self.redraws: dict[str, int] = {}   # view name -> times redrawn (tests read it)

        # wiring: the bridges emit on this (the GUI) thread only; see workers.py for why
        self.reader_bridge.tapped.connect(self.counter.on_tap)
        self.reader_bridge.state_changed.connect(self._reader_state)
        self.sync.report.connect(self._sync_report)
        self.enroll_view.enrolled.connect(self._enrolled)
        self.login_view.logged_in.connect(self._logged_in)
        self.counter.recorded.connect(self._recorded)
        self.counter.outcome.connect(self._outcome)
        self.counter.cashier_changed.connect(lambda _id, name: self.status_bar.show_cashier(name))
        self.sale_view.lock_requested.connect(self.lock)
        self.sale_view.history_requested.connect(self.show_history)
        self.sale_view.lookup_requested.connect(self.open_lookup)
        self.sale_view.sync_requested.connect(self.sync_now)
        self.sale_view.demo_requested.connect(self.open_demo_panel)
        self.history_view.back_requested.connect(self.show_sale)
        self.history_view.void_confirmed.connect(self._void)
        self.banner.dismiss_review.connect(self._dismiss_review)
        self.sale_view.settings_requested.connect(self.open_settings)

        # changes from the core, from any thread, merged and applied on this one
        self._pending = Change.NONE
        self._changes = ThreadInbox(self)
        self._changes.received.connect(self._changed)
        self._unsubscribe = terminal.subscribe(self._changes.put)

        # the school clock: one tick a minute, on the minute; it reads the clock, no store
        self._school_zone: tzinfo | None = None
        self._clock = QTimer(self)
        self._clock.setSingleShot(True)
        self._clock.timeout.connect(self._tick_clock)
        self.status_bar.show_reader(False, "not started")
        self.status_bar.show_cashier("")
        self._apply_local_settings()
        self.retranslate()

    def retranslate(self) -> None:
        self.setWindowTitle(self.tr("Cafeteria POS"))
        self._show_reader_notice()
        self._show_stopped()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    # ------------------------------------------------------------------ start and stop

    def start(self) -> None:
        """Start the reader and, once enrolled, the sync thread; pick the first screen."""
        try:
            self.reader_bridge.start()
        except Exception as exc:
            log.warning("reader did not start: %s", exc)
            self.status_bar.show_reader(False, str(exc))
        if self.terminal.enrolled():
            self.sync.start()
            self.show_login()
        else:
            self.stack.setCurrentWidget(self.enroll_view)
            if self._auto_enroll:
                self.enroll_view.submit()
        self.refresh_status()
        self._tick_clock()

    def shutdown(self) -> None:
        self._clock.stop()
        self._unsubscribe()
        self.sync.stop()
        self.reader_bridge.stop()
        self.player.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    # ------------------------------------------------------------------ screens

    def current_view(self) -> QWidget | None:
        return self.stack.currentWidget()

    def show_login(self) -> None:
        self.login_view.reload(self.counter.cashier_id)
        self.stack.setCurrentWidget(self.login_view)

    def show_sale(self) -> None:
        if self.counter.locked:
            self.show_login()
            return
        self._load_catalog()
        self.stack.setCurrentWidget(self.sale_view)
        self.sale_view.setFocus()

    def show_history(self) -> None:
        self.history_view.reload(newest=True)
        self.stack.setCurrentWidget(self.history_view)
        self.history_view.table.setFocus()

    def lock(self) -> None:
        last = self.counter.cashier_id
        self.counter.lock()
        self.login_view.reload(last)
        self.stack.setCurrentWidget(self.login_view)

    def _enrolled(self, _enrollment: object) -> None:
        self.sync.start()
        self.refresh_status()
        self.show_login()

    def _logged_in(self, cashier_id: str, name: str) -> None:
        self.counter.log_in(cashier_id, name)
        self.show_sale()

    # ------------------------------------------------------------------ actions

    def open_lookup(self) -> None:
        if self.counter.locked:
            return
        dialog = LookupDialog(self.terminal, self.counter.cart.total, self)
        dialog.chosen.connect(self._looked_up)
        dialog.finished.connect(self._lookup_closed)
        self.lookup_dialog = dialog
        dialog.open()
        dialog.query.setFocus()

    def _lookup_closed(self, _result: int) -> None:
        self.lookup_dialog = None
        self.activateWindow()
        self.sale_view.setFocus()

    def _looked_up(self, wallet_id: str, name: str) -> None:
        if self.counter.cart.is_empty():
            self.counter.show_balance(wallet_id)
            return
        self.counter.charge(wallet_id=wallet_id)

    def open_settings(self) -> None:
        if self.counter.locked or self.settings_dialog is not None:
            return
        dialog = SettingsDialog(self.terminal, self.player, self)
        dialog.finished.connect(self._settings_closed)
        self.settings_dialog = dialog
        dialog.open()

    def _settings_closed(self, _result: int) -> None:
        self.settings_dialog = None
        self.activateWindow()
        self.sale_view.setFocus()

    def open_demo_panel(self) -> None:
        if self.demo_panel is not None:
            self.demo_panel.reload()
            self.demo_panel.show()
            self.demo_panel.raise_()

    def sync_now(self) -> None:
        self.sync.wake()

    def _void(self, ref: str) -> None:
        outcome = self.counter.void(ref)  # the history redraws on the core's SALES change
        refusal = outcome.refusal
        if refusal is not None:
            self.history_view.show_message(lambda: messages.refusal_of(refusal))
        elif outcome.kind == "refused":
            self.history_view.show_message(outcome.message)
        else:
            self.history_view.show_message(lambda: self.tr(
                "Voided: %1 gets the money back.").replace("%1", i18n.isolate(outcome.name)))

    def _dismiss_review(self) -> None:
        self.terminal.dismiss_review()  # the banner redraws on the core's change

    # ------------------------------------------------------------------ events from threads

    def _reader_state(self, state: str, message: str) -> None:
        connected = state == ReaderState.CONNECTED.value
        self.reader_state = state
        self.status_bar.show_reader(connected, message, self.reader.kind)
        self._show_reader_notice()
        if self.terminal.enrolled():
            self.terminal.set_reader(f"{self.reader.kind}: {message}")

    def _show_reader_notice(self) -> None:
        """A lost reader is said where the cashier looks (the answer band, the login screen),
        not only in the status bar: taps would otherwise just do nothing."""
        if self.reader_state == ReaderState.DISCONNECTED.value:
            title = self.tr("The bracelet reader is not connected")
            detail = self.tr("Check its cable or plug it in again; bracelets cannot be read "
                             "until it is back. A student can still pay by name (F3).")
            self.sale_view.result.set_notice(title, detail)
            self.login_view.show_notice(title)
        else:
            self.sale_view.result.set_notice(None)
            self.login_view.show_notice(None)

    def _sync_report(self, _report: SyncReport) -> None:
        """Kept for listeners of :attr:`SyncBridge.report`; what a cycle changed reaches the
        screen through the core's change flags (:meth:`_changed`)."""

    def _recorded(self, _receipt: Receipt) -> None:
        self.sync.wake()

    def _outcome(self, outcome: Outcome) -> None:
        sound = SOUNDS.get(outcome.kind)
        if sound is not None:
            self.player.play(sound)
        if outcome.code == "locked":
            self.login_view.show_tap_while_locked()
        elif (self.stack.currentWidget() is self.history_view and outcome.kind != "voided"
              and self.history_view.confirm_box is None):
            self.show_sale()  # a bracelet tapped while the history is open: show its answer

    # ------------------------------------------------------------------ redraw on change

    def _changed(self, what: Change) -> None:
        """Flags from the inbox: merge those that arrive together, redraw once after them."""
        if not self._pending:
            QTimer.singleShot(0, self._apply_changes)
        self._pending |= what

    def _apply_changes(self) -> None:
        what, self._pending = self._pending, Change.NONE
        self.redraw(what)

    def redraw(self, what: Change) -> None:
        """Redraw only the views that show a part ``what`` names."""
        if what & Change.SETTINGS:
            self._apply_local_settings()
        if what & STATUS_CHANGES:
            self.refresh_status()
        if what & CATALOG_CHANGES:
            current = self.stack.currentWidget()
            if current is self.sale_view:
                self._load_catalog()
            elif current is self.login_view and not self.login_view.busy:
                self._count("login")
                self.login_view.reload()
        if what & HISTORY_CHANGES and self.stack.currentWidget() is self.history_view:
            self._count("history")
            self.history_view.reload()

    def _count(self, view: str) -> None:
        self.redraws[view] = self.redraws.get(view, 0) + 1

    def _load_catalog(self) -> None:
        self._count("products")
        self.sale_view.set_currency(self.terminal.currency())
        self.sale_view.load_products(self.terminal.products())

    def _apply_local_settings(self) -> None:
        """Volume, mute and language of this till, and the school's time zone for the clock."""
        settings = self.terminal.local_settings()
        self.player.configure(volume=settings.sound_volume, muted=settings.sound_muted)
        zone = self.terminal.school_now().tzinfo
        if zone != self._school_zone:
            self._school_zone = zone
            self.status_bar.show_clock(self.school_time())  # the new zone at once
        app = QApplication.instance()
        if isinstance(app, QApplication) and i18n.normalise(settings.language) != i18n.current():
            i18n.switch(app, settings.language)

    def school_time(self) -> datetime:
        """Now in the school's zone (from the last settings change; no store read)."""
        return datetime.now(self._school_zone or UTC)

    def _tick_clock(self) -> None:
        now = self.school_time()
        self.status_bar.show_clock(now)
        self._clock.start((60 - now.second) * 1000 - now.microsecond // 1000 + 50)

    def refresh_status(self) -> None:
        self._count("status")
        status = self.terminal.status()
        currency = self.terminal.currency()
        self.status_bar.show_status(status, currency, self.school_time())
        self.banner.show_alerts(self.terminal.alerts())
        self._show_stopped()

    def _show_stopped(self) -> None:
        """Why this till may not sell (a revoked device), in the cashier's language."""
        stopped = self.terminal.selling_stopped()
        self.sale_view.show_stopped(messages.refusal_of(stopped) if stopped else None)
