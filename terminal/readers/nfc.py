"""nfcpy readers (Sony RC-S380, PN533-based and friends) on ``usb:...``, ``tty:...`` or ``udp:...``.

Why nfcpy's own ``connect`` loop: it activates Type 1–4 tags and then keeps checking that the
tag is still there, so a bracelet left on the reader is read once and the next read waits for
a new placement. ``connect`` swallows I/O errors and returns False; that is the only sign of an
unplugged reader, so the worker then closes the device and looks for it again.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Sequence
from typing import Any

import nfc

from shared.ids import mask_uid, normalize_uid
from terminal.readers.base import NO_READER, ReaderState, ThreadedReader

log = logging.getLogger(__name__)

DEFAULT_TARGETS = ("106A", "106B", "212F")  # Type 1/2/4A, Type 4B, Type 3 (FeliCa)
PATH_PREFIXES = ("usb", "tty", "com", "udp")
RETRY_SECONDS = 1.0


class NfcReader(ThreadedReader):
    """Reads tag identifiers (UID, PUPI or IDm) through nfcpy in a worker thread."""

    kind = "nfc"
    # On a real reader a polling round lasts milliseconds; over udp a silent round waits 1 s
    # per technology, hence the generous join.
    join_timeout = 4.0

    def __init__(self, path: str = "usb", targets: Sequence[str] = DEFAULT_TARGETS) -> None:
        super().__init__()
        if not path or path.split(":", 1)[0] not in PATH_PREFIXES:
            raise ValueError(
                f"The nfc reader path {path!r} is not understood; use usb, usb:VENDOR:PRODUCT, "
                "usb:BUS:DEVICE, tty:PORT:DRIVER or udp:HOST:PORT."
            )
        unknown = [t for t in targets if t not in ("106A", "106B", "212F", "424F")]
        if unknown or not targets:
            raise ValueError(
                f"The nfc reader cannot poll for {unknown or 'nothing'}; "
                "choose among 106A, 106B, 212F and 424F."
            )
        self.path = path
        self.targets = tuple(targets)

    def _start(self) -> None:
        # nfcpy logs whole tag identifiers at DEBUG level; bracelet UIDs must not reach the logs
        # even when the app runs with debug logging.
        logging.getLogger("nfc").setLevel(max(logging.INFO, logging.getLogger("nfc").level))
        super()._start()

    # -- worker thread

    def _run(self) -> None:
        while not self._stop_event.is_set():
            clf = nfc.ContactlessFrontend()
            try:
                opened = self._open(clf)
                if opened:
                    self._set_state(ReaderState.CONNECTED, f"{clf.device} ready")
                    self._poll(clf)
            except Exception:  # a driver quirk must not kill the reader for the whole day
                log.exception("nfc reader loop failed; starting again")
                self._disconnected("reader error, retrying")
            finally:
                clf.close()
            self._stop_event.wait(RETRY_SECONDS)

    def _open(self, clf: Any) -> bool:
        try:
            if clf.open(self.path):
                return True
            self._disconnected(NO_READER)
        except OSError as error:
            self._disconnected(_open_error_message(error))
        return False

    def _poll(self, clf: Any) -> None:
        options = {
            "targets": self.targets,
            "on-connect": self._on_connect,
            "iterations": 1,
            "interval": 0.1,
            "beep-on-connect": True,
        }
        while not self._stop_event.is_set():
            result = clf.connect(rdwr=options, terminate=self._stop_event.is_set)
            if result is False and not self._stop_event.is_set():
                self._disconnected("reader disconnected")
                return

    def _on_connect(self, tag: Any) -> bool:
        try:
            uid = normalize_uid(bytes(tag.identifier).hex())
        except ValueError:
            log.info("a %s tag without a usable identifier was ignored", type(tag).__name__)
            return True
        log.info("bracelet %s read (%s)", mask_uid(uid), type(tag).__name__)
        self._emit_tap(uid)
        return True  # True: nfcpy waits until the tag is gone, so it is not read again


def _open_error_message(error: OSError) -> str:
    if error.errno == errno.EACCES:
        return "no permission to use the reader (install the udev rule, see docs/readers.md)"
    if error.errno == errno.EBUSY:
        return "reader busy: a kernel driver or another program holds it (see docs/readers.md)"
    if error.errno == errno.ENODEV:
        return NO_READER
    return f"reader cannot be opened: {error.strerror or error}"
