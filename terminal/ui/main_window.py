"""The cashier app's window: banner on top, one screen in the middle, status bar below.

It wires the parts together and keeps them honest about threads: reader taps and sync reports
arrive as queued signals and are applied here on the GUI thread; a timer refreshes the status
bar from the store once a second (a local read, never the network).
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QMainWindow, QStackedWidget, QVBoxLayout, QWidget

from terminal.core import Receipt, Terminal
from terminal.readers.base import BraceletReader, ReaderState
from terminal.readers.simulated import SimulatedReader
from terminal.settings import SYNC_INTERVAL_S
from terminal.sync.backoff import Backoff
from terminal.sync.cycle import SyncReport
from terminal.ui.banner import Banner
from terminal.ui.counter import Counter, Outcome
from terminal.ui.demo_panel import DemoPanel
from terminal.ui.enroll_view import EnrollView
from terminal.ui.history_view import HistoryView
from terminal.ui.login_view import LoginView
from terminal.ui.lookup_dialog import LookupDialog
from terminal.ui.sale_view import SaleView
from terminal.ui.status_bar import StatusBar
from terminal.ui.workers import ReaderBridge, SyncBridge

log = logging.getLogger(__name__)
STATUS_REFRESH_MS = 1000


class MainWindow(QMainWindow):
    def __init__(self, terminal: Terminal, reader: BraceletReader, *,
                 sync_interval: float = SYNC_INTERVAL_S, backoff: Backoff | None = None,
                 server: str | None = None, enroll_code: str | None = None,
                 name: str | None = None) -> None:
        super().__init__()
        self.terminal = terminal
        self.reader = reader
        self._auto_enroll = bool(server and enroll_code)
        self.setWindowTitle("Cafeteria POS")
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

        self._timer = QTimer(self)
        self._timer.setInterval(STATUS_REFRESH_MS)
        self._timer.timeout.connect(self.refresh_status)
        self.status_bar.show_reader(False, "not started")
        self.status_bar.show_cashier("")

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
        self._timer.start()
        self.refresh_status()

    def shutdown(self) -> None:
        self._timer.stop()
        self.sync.stop()
        self.reader_bridge.stop()

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
        self.sale_view.set_currency(self.terminal.currency())
        self.sale_view.load_products(self.terminal.products())
        self.stack.setCurrentWidget(self.sale_view)
        self.sale_view.setFocus()

    def show_history(self) -> None:
        self.history_view.reload()
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
            view = self.terminal.wallet_view(wallet_id)
            balance = view.balance_estimate if view else None
            self.counter.outcome.emit(Outcome(
                "info", name, "Balance only: the cart is empty, nothing was charged.",
                before=balance, after=balance))
            return
        self.counter.charge(wallet_id=wallet_id)

    def open_demo_panel(self) -> None:
        if self.demo_panel is not None:
            self.demo_panel.reload()
            self.demo_panel.show()
            self.demo_panel.raise_()

    def sync_now(self) -> None:
        self.sync.wake()

    def _void(self, ref: str) -> None:
        outcome = self.counter.void(ref)
        self.history_view.reload()
        self.history_view.show_message(
            outcome.message if outcome.kind == "refused"
            else f"Voided: {outcome.name} gets the money back.")

    def _dismiss_review(self) -> None:
        self.terminal.dismiss_review()
        self.refresh_status()

    # ------------------------------------------------------------------ events from threads

    def _reader_state(self, state: str, message: str) -> None:
        connected = state == ReaderState.CONNECTED.value
        self.status_bar.show_reader(connected, message, self.reader.kind)
        if self.terminal.enrolled():
            self.terminal.set_reader(f"{self.reader.kind}: {message}")

    def _sync_report(self, report: SyncReport) -> None:
        if report.snapshot_pages:
            if self.stack.currentWidget() is self.sale_view:
                self.sale_view.load_products(self.terminal.products())
            if self.stack.currentWidget() is self.login_view and not self.login_view.busy:
                self.login_view.reload()
        if self.stack.currentWidget() is self.history_view:
            self.history_view.reload()
        self.refresh_status()

    def _recorded(self, _receipt: Receipt) -> None:
        self.sync.wake()
        self.refresh_status()

    def _outcome(self, _outcome: Outcome) -> None:
        if self.stack.currentWidget() is self.history_view:
            self.history_view.reload()

    def refresh_status(self) -> None:
        status = self.terminal.status()
        currency = self.terminal.currency()
        self.status_bar.show_status(status, currency)
        self.banner.show_alerts(self.terminal.alerts())
        stopped = self.terminal.selling_stopped()
        self.sale_view.show_stopped(stopped.message if stopped else None)
