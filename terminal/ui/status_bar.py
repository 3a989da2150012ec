"""Always-visible state of the terminal: online or not, whether the server's updates arrive
live (the event stream) or by polling, what waits to be synced, when the last sync was, and
whether the reader is there. Filled from :meth:`Terminal.status`, so it
says exactly what ``pos-terminal status`` says. What it last showed is kept, so a language switch
redraws the same state in the other language."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QWidget

from shared.money import format_minor
from terminal.ui import theme
from terminal.ui.i18n import isolate


def _ago(iso: str | None, now: datetime) -> str:
    translate = QCoreApplication.translate
    if not iso:
        return translate("StatusBar", "never")
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    seconds = max(0, int((now - moment).total_seconds()))
    local = moment.astimezone(now.tzinfo).strftime("%H:%M")  # in the zone of ``now``
    if seconds < 60:
        return translate("StatusBar", "%1 (just now)").replace("%1", local)
    if seconds < 3600:
        text = translate("StatusBar", "%1 (%2 min ago)")
        return text.replace("%1", local).replace("%2", str(seconds // 60))
    text = translate("StatusBar", "%1 (%2 h ago)")
    return text.replace("%1", local).replace("%2", str(seconds // 3600))


class StatusBar(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("statusBar")
        self.setStyleSheet("#statusBar { background: #263238; }"
                           "#statusBar QLabel { color: white; font-size: 11pt; }")
        self.setFixedHeight(34)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 2, 8, 2)
        layout.setSpacing(18)
        self.network = QLabel()
        self.updates = QLabel()     # "Live" or "Polling" while online, empty otherwise
        self.queue = QLabel()
        self.last_sync = QLabel()
        self.reader = QLabel()
        self.cashier = QLabel()
        self.clock = QLabel()       # school time, set each minute by the window's clock timer
        self.clock.setStyleSheet("font-weight: bold;")
        for label in (self.network, self.updates, self.queue, self.last_sync, self.reader):
            layout.addWidget(label)
        layout.addStretch(1)
        layout.addWidget(self.cashier)
        layout.addWidget(self.clock)
        # Every part may give up width (its text is cut at the end) rather than make the
        # window wider than a 1024 px screen: a long cashier name and an Arabic status line
        # together are wider than that.
        for label in (self.queue, self.last_sync, self.reader, self.cashier):
            label.setMinimumWidth(60)
        self.online: bool | None = None
        self.updates_mode: str | None = None   # what the updates label shows (tests read it)
        self.reader_connected = False
        self._last_sync_at: str | None = None
        # what was last shown, to redraw it in another language
        self._status: tuple[dict[str, Any], str] | None = None
        self._reader: tuple[bool, str, str] | None = None
        self._cashier_name = ""
        self.show_cashier("")

    def retranslate(self) -> None:
        if self._status is not None:
            self.show_status(*self._status)
        if self._reader is not None:
            self.show_reader(*self._reader)
        self.show_cashier(self._cashier_name)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    def show_status(self, status: dict[str, Any], currency: str,
                    now: datetime | None = None) -> None:
        self._status = (status, currency)
        now = now or datetime.now(UTC).astimezone()
        if not status.get("enrolled"):
            self.online = None
            self.network.setText(self.tr("Not enrolled"))
            self._show_updates(None)
            self.queue.setText("")
            self.last_sync.setText("")
            return
        self.online = bool(status.get("server_reachable"))
        colour = theme.ONLINE if self.online else theme.OFFLINE
        text = self.tr("Online") if self.online else self.tr("Offline")
        if status.get("device_revoked"):
            text, colour = self.tr("Not authorized"), theme.OFFLINE
        self.network.setText(f'<span style="color:{colour}">\u25cf</span> {text}')
        self._show_updates(status.get("updates") if self.online
                           and not status.get("device_revoked") else None)
        queued, total = int(status.get("queued") or 0), int(status.get("queued_total") or 0)
        self.queue.setText(
            self.tr("To sync: %1 (%2)").replace("%1", str(queued)).replace(
                "%2", isolate(format_minor(total, currency))) if queued
            else self.tr("All synced"))
        self._last_sync_at = status.get("last_sync_at")
        self.last_sync.setText(self.tr("Last sync: %1").replace(
            "%1", _ago(self._last_sync_at, now)))

    def _show_updates(self, updates: str | None) -> None:
        """Live: top-ups and blocked bracelets arrive within seconds (the event stream is
        held). Polling: they arrive at the next check. Offline says enough on its own."""
        self.updates_mode = updates
        if updates == "live":
            self.updates.setText(f'<span style="color:{theme.ONLINE}">\u25cf</span> '
                                 + self.tr("Live"))
            self.updates.setToolTip(self.tr("Top-ups and blocked bracelets arrive within "
                                            "seconds."))
        elif updates == "polling":
            self.updates.setText(f'<span style="color:{theme.WARNING}">\u25cf</span> '
                                 + self.tr("Polling"))
            self.updates.setToolTip(self.tr("Top-ups and blocked bracelets arrive at the "
                                            "next check with the server."))
        else:
            self.updates.setText("")
            self.updates.setToolTip("")

    def show_clock(self, school_now: datetime) -> None:
        """The school's time (the till may be set to another zone), and the "3 min ago" of the
        last sync moved on: a clock tick redraws from what is held here, reading no store."""
        self.clock.setText(school_now.strftime("%H:%M"))
        if self.online is not None:
            self.last_sync.setText(self.tr("Last sync: %1").replace(
                "%1", _ago(self._last_sync_at, school_now)))

    def show_reader(self, connected: bool, message: str, kind: str = "") -> None:
        """``kind`` names the active reader (pcsc, nfc, wedge, simulated) so the cashier and
        the installer can see which path the bracelets come through."""
        self._reader = (connected, message, kind)
        self.reader_connected = connected
        colour = theme.ONLINE if connected else theme.OFFLINE
        # pcsc and nfc are the drivers' names; the other two are said in words
        kind = {"simulated": self.tr("simulated"),
                "wedge": self.tr("keyboard wedge")}.get(kind, kind)
        if connected:
            word = (self.tr("Reader (%1) connected").replace("%1", isolate(kind)) if kind
                    else self.tr("Reader connected"))
        else:
            word = (self.tr("Reader (%1) NOT connected").replace("%1", isolate(kind)) if kind
                    else self.tr("Reader NOT connected"))
        self.reader.setText(f'<span style="color:{colour}">\u25cf</span> {word}')
        self.reader.setToolTip(message)

    def show_cashier(self, name: str) -> None:
        self._cashier_name = name
        self.cashier.setText(self.tr("Cashier: %1").replace("%1", isolate(name)) if name
                             else self.tr("Locked"))
