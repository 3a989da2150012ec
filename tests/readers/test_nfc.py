"""The nfcpy reader over nfcpy's udp transport (a free port per test).

Type 2: a thread plays an NTAG213 bracelet (tests/readers/type2_tag.py), because nfcpy cannot
emulate Type 2 over udp. Type 3: nfcpy's own card emulation (212F) on a second frontend.
Over udp a silent polling round waits 1 s per technology, so each test polls only the
technology it exercises and the timeouts are a few seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import nfc
import pytest

from terminal.readers.base import ReaderState
from terminal.readers.nfc import NfcReader
from tests.readers.event_log import EventLog
from tests.readers.type2_tag import SimulatedType2Tag, free_udp_port

UID = "04A1B2C3D4E580"
IDM = "02FE112233445566"


@pytest.fixture
def type2_tag() -> Iterator[SimulatedType2Tag]:
    tag = SimulatedType2Tag(UID, free_udp_port())
    yield tag
    tag.close()


def test_type2_bracelet_read_once_per_placement(
    type2_tag: SimulatedType2Tag, events: EventLog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    reader = NfcReader(f"udp:127.0.0.1:{type2_tag.port}", targets=("106A",))
    reader.start(events)
    try:
        assert "ready" in events.wait_state(ReaderState.CONNECTED).message
        type2_tag.place()
        stamp, uid = events.wait_tap(timeout=5)
        insert_to_uid = stamp - type2_tag.placed_at
        assert uid == UID
        time.sleep(1.5)  # left on the reader: nfcpy keeps checking presence, no second read
        assert events.taps == [UID]

        type2_tag.remove()
        deadline = time.monotonic() + 5
        while not type2_tag.first_poll_after_removal and time.monotonic() < deadline:
            time.sleep(0.02)
        assert type2_tag.first_poll_after_removal, "the reader never noticed the removal"
        removal_noticed = type2_tag.first_poll_after_removal - type2_tag.removed_at
        assert events.taps == [UID]

        type2_tag.place()
        events.wait_tap(timeout=5, after=events.mark())
        assert events.taps == [UID, UID]
    finally:
        reader.stop()
    print(
        f"nfc type2 insert-to-UID {insert_to_uid * 1000:.0f} ms, "
        f"removal noticed in {removal_noticed * 1000:.0f} ms"
    )
    assert UID not in caplog.text  # nfcpy logs whole identifiers at DEBUG; they must not pass
    assert "04A1…E580" in caplog.text


class EmulatedType3Tag:
    """nfcpy's card emulation as a FeliCa (Type 3) tag; stopping it takes the tag away."""

    def __init__(self, port: int, idm: str) -> None:
        self.port = port
        self.sensf_res = b"\x01" + bytes.fromhex(idm) + bytes.fromhex("FFFFFFFFFFFFFFFF12FC")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def place(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def remove(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            assert not self._thread.is_alive()
            self._thread = None

    def _run(self) -> None:
        clf = nfc.ContactlessFrontend(f"udp:127.0.0.1:{self.port}")

        def on_startup(target: nfc.clf.LocalTarget) -> nfc.clf.LocalTarget:
            target.brty = "212F"
            target.sensf_res = self.sensf_res
            return target

        try:
            while not self._stop.is_set():
                clf.connect(
                    card={"on-startup": on_startup, "timeout": 0.3}, terminate=self._stop.is_set
                )
        finally:
            clf.close()


def test_type3_tag_read_and_removal_noticed(events: EventLog) -> None:
    port = free_udp_port()
    tag = EmulatedType3Tag(port, IDM)
    reader = NfcReader(f"udp:127.0.0.1:{port}", targets=("212F",))
    tag.place()
    placed_at = time.monotonic()
    reader.start(events)
    try:
        stamp, uid = events.wait_tap(timeout=5)
        assert uid == IDM
        time.sleep(1.0)
        assert events.taps == [IDM]  # still on the reader: not read again
        tag.remove()
        time.sleep(1.0)
        tag.place()  # a new placement must be a new read, which needs the removal noticed
        events.wait_tap(timeout=5, after=events.mark())
        assert events.taps == [IDM, IDM]
    finally:
        tag.remove()
        reader.stop()
    print(f"nfc type3 start-to-IDm {(stamp - placed_at) * 1000:.0f} ms")


def test_missing_usb_reader_is_reported_and_stop_is_prompt(events: EventLog) -> None:
    reader = NfcReader("usb:ffff:ffff")  # a vendor ID no reader has
    reader.start(events)
    try:
        assert events.wait_state(ReaderState.DISCONNECTED).message == "no reader connected"
    finally:
        started = time.monotonic()
        reader.stop()
    assert time.monotonic() - started < 1.5
    assert reader.state is ReaderState.STOPPED


def test_stop_during_udp_polling_joins_the_worker(type2_tag: SimulatedType2Tag) -> None:
    reader = NfcReader(f"udp:127.0.0.1:{type2_tag.port}", targets=("106A",))
    reader.start(EventLog())
    time.sleep(0.3)  # inside a silent polling round
    started = time.monotonic()
    reader.stop()
    assert time.monotonic() - started < 2.0
    assert not any(t.name == "nfc-reader" for t in threading.enumerate())


@pytest.mark.parametrize("path", ["", "bluetooth:1", "/dev/ttyUSB0"])
def test_unknown_path_is_refused_in_words(path: str) -> None:
    with pytest.raises(ValueError, match=r"path .* is not understood"):
        NfcReader(path)
