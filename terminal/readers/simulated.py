"""A reader with no hardware, for the demo counter and for tests of everything above readers.

The demo UI taps the demo students' bracelets through :meth:`SimulatedReader.tap`, and the
disconnect/reconnect methods let the status bar and the cashier's messages be shown without
unplugging anything. It follows the same contract as the real readers: no taps while
disconnected, UIDs normalized, state changes in plain words.
"""

from __future__ import annotations

import logging

from shared.ids import mask_uid, normalize_uid
from terminal.readers.base import NO_READER, BraceletReader, ReaderState

log = logging.getLogger(__name__)

READY = "simulated reader ready"


class SimulatedReader(BraceletReader):
    kind = "simulated"

    def _start(self) -> None:
        self._set_state(ReaderState.CONNECTED, READY)

    def _stop(self) -> None:
        pass

    def tap(self, uid: str) -> bool:
        """Tap a bracelet; returns False (and reads nothing) when the reader is not connected,
        like a real reader that is unplugged. Raises ValueError for a malformed UID."""
        normalized = normalize_uid(uid)
        if self.state is not ReaderState.CONNECTED:
            log.info("simulated tap of %s ignored: %s", mask_uid(normalized), self.state.value)
            return False
        self._emit_tap(normalized)
        return True

    def disconnect(self, message: str = NO_READER) -> None:
        if self.state is not ReaderState.STOPPED:
            self._set_state(ReaderState.DISCONNECTED, message)

    def reconnect(self) -> None:
        if self.state is not ReaderState.STOPPED:
            self._set_state(ReaderState.CONNECTED, READY)
