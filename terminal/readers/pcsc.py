"""PC/SC readers (ACR122U and friends) through pyscard's low-level API against pcscd.

Why the low-level ``smartcard.scard`` calls instead of pyscard's ``CardMonitor``: the monitor's
thread cannot be stopped, while a loop on ``SCardGetStatusChange`` with a short timeout
notices a stop request within a quarter of a second. Why the PC/SC context is re-established
on every failure: pcscd gets restarted (package upgrades, a crashed driver, an unplugged
reader) and an old context never works again; the reader must heal without an app restart.
"""

from __future__ import annotations

import logging
from typing import Any

from smartcard import scard

from shared.ids import mask_uid, normalize_uid
from terminal.readers.base import NO_READER, ReaderState, ThreadedReader

log = logging.getLogger(__name__)

GET_UID_APDU = [0xFF, 0xCA, 0x00, 0x00, 0x00]  # PC/SC part 3 pseudo-APDU: "get data: UID"
POLL_TIMEOUT_MS = 250  # how long one SCardGetStatusChange may block before stop is checked
RETRY_SECONDS = 0.5  # pause before looking again for pcscd or a reader

NO_SERVICE = "reader service not running"

# hresults meaning "the service or the reader went away": start again from a new context.
_LOST = {
    scard.SCARD_E_NO_SERVICE,
    scard.SCARD_E_SERVICE_STOPPED,
    scard.SCARD_F_COMM_ERROR,
    scard.SCARD_E_INVALID_HANDLE,
    scard.SCARD_E_UNKNOWN_READER,
    scard.SCARD_E_READER_UNAVAILABLE,
    scard.SCARD_E_NO_READERS_AVAILABLE,
    scard.SCARD_E_INVALID_PARAMETER,
}


_SERVICE_GONE = {scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED, scard.SCARD_F_COMM_ERROR}


class _Lost(Exception):
    """The context or reader is gone; carries the plain words for the cashier."""


class PcscReader(ThreadedReader):
    """Reads the UID of each bracelet placed on a PC/SC reader, once per placement."""

    kind = "pcsc"

    def __init__(self, reader: str | None = None) -> None:
        super().__init__()
        self._wanted = reader.strip() if reader else None

    # -- worker thread

    def _run(self) -> None:
        while not self._stop_event.is_set():
            hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hresult != scard.SCARD_S_SUCCESS:
                self._disconnected(NO_SERVICE)
                self._stop_event.wait(RETRY_SECONDS)
                continue
            try:
                self._serve(context)
            except _Lost as lost:
                self._disconnected(NO_SERVICE if not _service_running() else str(lost))
                self._stop_event.wait(RETRY_SECONDS)
            except Exception:  # a driver quirk must not kill the reader for the whole day
                log.exception("PC/SC reader loop failed; starting again")
                self._disconnected("reader error, retrying")
                self._stop_event.wait(RETRY_SECONDS)
            finally:
                scard.SCardReleaseContext(context)

    def _serve(self, context: Any) -> None:
        """Wait for a reader, then watch it for bracelets until it or pcscd goes away."""
        name = self._find_reader(context)
        while name is None:
            if self._stop_event.wait(RETRY_SECONDS):
                return
            name = self._find_reader(context)
        self._set_state(ReaderState.CONNECTED, f"{name} ready")
        log.info("PC/SC reader %r ready", name)

        known = scard.SCARD_STATE_UNAWARE
        card_handled = False  # a bracelet left on the reader is read only once
        while not self._stop_event.is_set():
            hresult, states = scard.SCardGetStatusChange(context, POLL_TIMEOUT_MS, [(name, known)])
            if hresult == scard.SCARD_E_TIMEOUT:
                continue
            if hresult != scard.SCARD_S_SUCCESS:
                raise _Lost(_lost_message(hresult))
            _, event_state, _atr = states[0]
            known = event_state & ~scard.SCARD_STATE_CHANGED
            if event_state & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE):
                raise _Lost(NO_READER)
            if event_state & scard.SCARD_STATE_PRESENT:
                if not card_handled:
                    card_handled = True
                    self._read_uid(context, name)
            elif event_state & scard.SCARD_STATE_EMPTY:
                card_handled = False

    def _find_reader(self, context: Any) -> str | None:
        hresult, readers = scard.SCardListReaders(context, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE or (
            hresult == scard.SCARD_S_SUCCESS and not readers
        ):
            self._disconnected(self._absent_message())
            return None
        if hresult != scard.SCARD_S_SUCCESS:
            raise _Lost(_lost_message(hresult))
        if self._wanted is None:
            return str(readers[0])
        wanted = self._wanted.lower()
        for reader in readers:
            if wanted in str(reader).lower():
                return str(reader)
        self._disconnected(self._absent_message())
        return None

    def _absent_message(self) -> str:
        return NO_READER if self._wanted is None else f"reader {self._wanted!r} not connected"

    def _read_uid(self, context: Any, name: str) -> None:
        protocols = scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
        hresult, card, protocol = scard.SCardConnect(
            context, name, scard.SCARD_SHARE_SHARED, protocols
        )
        if hresult != scard.SCARD_S_SUCCESS:
            # Usually the bracelet was pulled away mid-read; the next placement reads again.
            log.info("could not connect to the bracelet: %s", _error_text(hresult))
            return
        try:
            hresult, response = scard.SCardTransmit(card, protocol, GET_UID_APDU)
        finally:
            scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
        if hresult != scard.SCARD_S_SUCCESS:
            log.info("bracelet did not answer: %s", _error_text(hresult))
            return
        if len(response) < 3 or response[-2:] != [0x90, 0x00]:
            log.info("reader refused the UID request (status %s)", bytes(response[-2:]).hex())
            return
        try:
            uid = normalize_uid(bytes(response[:-2]).hex())
        except ValueError:
            log.info("bracelet answered with something that is not a UID")
            return
        log.info("bracelet %s read", mask_uid(uid))
        self._emit_tap(uid)


def _service_running() -> bool:
    """Ask pcscd directly: when it dies under a call, pcsclite's error codes vary (RPC
    transport error, access denied...), and the cashier should read the real cause."""
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return False
    scard.SCardReleaseContext(context)
    return True


def _lost_message(hresult: int) -> str:
    # pcsclite answers "RPC transport error" (F_COMM_ERROR) when pcscd dies under a call.
    if hresult in _SERVICE_GONE:
        return NO_SERVICE
    if hresult in _LOST:
        return NO_READER
    return f"reader error: {_error_text(hresult)}"


def _error_text(hresult: int) -> str:
    return str(scard.SCardGetErrorMessage(hresult))
