"""The PC/SC reader against a real pcscd driving vsmartcard's virtual reader.

The bracelet is a vpcd client (tests/readers/virtual_bracelet.py): connecting places it on
``Virtual PCD 00 00``, closing takes it away. The vpcd ports are fixed, so these tests cannot
run in parallel processes.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest

from terminal.readers.base import ReaderState, StateChange
from tests.readers.event_log import EventLog
from tests.readers.pcscd_process import Pcscd
from tests.readers.virtual_bracelet import VirtualBracelet

pytestmark = [pytest.mark.pcsc, pytest.mark.xdist_group("pcscd")]  # fixed vpcd ports

UID_A = "04A1B2C3D4E580"
UID_B = "04112233445566"


@pytest.fixture
def pcsc_reader_class():  # imported here so that a machine without pyscard skips, not errors
    from terminal.readers.pcsc import PcscReader

    return PcscReader


def test_reads_each_placement_once_and_the_next_bracelet(
    pcscd: Pcscd, events: EventLog, pcsc_reader_class, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pcscd.start()
    reader = pcsc_reader_class()
    reader.start(events)
    first, second = VirtualBracelet(UID_A), VirtualBracelet(UID_B)
    try:
        assert events.wait_state(ReaderState.CONNECTED).message == "Virtual PCD 00 00 ready"

        first.place()
        stamp, uid = events.wait_tap()
        insert_to_uid = stamp - first.placed_at
        assert uid == UID_A
        time.sleep(1.5)  # left on the reader: several pcscd polls, still one read
        assert events.taps == [UID_A]
        assert first.uid_requests == 1

        first.remove()
        second.place()
        _, uid = events.wait_tap(after=events.mark())
        assert uid == UID_B
        second.remove()
        first.place()  # the same bracelet again after removal is a new tap
        events.wait_tap(timeout=5, after=len(events.events))
        assert events.taps == [UID_A, UID_B, UID_A]
    finally:
        first.remove()
        second.remove()
        reader.stop()
    print(f"pcsc insert-to-UID latency: {insert_to_uid * 1000:.0f} ms")
    assert insert_to_uid < 3.0
    assert UID_A not in caplog.text and UID_B not in caplog.text
    assert "04A1…E580" in caplog.text


def test_survives_pcscd_stop_and_restart(pcscd: Pcscd, events: EventLog, pcsc_reader_class) -> None:
    reader = pcsc_reader_class()
    reader.start(events)
    bracelet = VirtualBracelet(UID_A)
    try:
        # Started before the service: says so in plain words and keeps trying.
        assert events.wait_state(ReaderState.DISCONNECTED).message == "reader service not running"
        pcscd.start()
        events.wait_state(ReaderState.CONNECTED)

        mark = events.mark()
        stopped_at = time.monotonic()
        pcscd.stop()
        events.wait_for(
            lambda e: e == StateChange(ReaderState.DISCONNECTED, "reader service not running"),
            timeout=3,
            after=mark,
        )
        print(f"pcsc: pcscd stop noticed in {(time.monotonic() - stopped_at) * 1000:.0f} ms")

        mark = events.mark()
        pcscd.start()
        assert events.wait_state(ReaderState.CONNECTED, after=mark).message == (
            "Virtual PCD 00 00 ready"
        )
        bracelet.place()
        _, uid = events.wait_tap(after=mark)
        assert uid == UID_A
    finally:
        bracelet.remove()
        reader.stop()
    assert reader.state is ReaderState.STOPPED


def test_reader_chosen_by_name(pcscd: Pcscd, events: EventLog, pcsc_reader_class) -> None:
    pcscd.start()
    second_port = pcsc_reader_class(reader="pcd 00 01")
    missing = pcsc_reader_class(reader="ACR122")
    other_events = EventLog()
    second_port.start(events)
    missing.start(other_events)
    bracelet = VirtualBracelet(UID_B, port=35964)  # Virtual PCD 00 01
    try:
        assert events.wait_state(ReaderState.CONNECTED).message == "Virtual PCD 00 01 ready"
        assert other_events.wait_state(ReaderState.DISCONNECTED).message == (
            "reader 'ACR122' not connected"
        )
        bracelet.place()
        assert events.wait_tap()[1] == UID_B
        time.sleep(0.5)
        assert other_events.taps == []
    finally:
        bracelet.remove()
        second_port.stop()
        missing.stop()


def test_stop_returns_promptly_while_polling(
    pcscd: Pcscd, events: EventLog, pcsc_reader_class
) -> None:
    pcscd.start()
    reader = pcsc_reader_class()
    reader.start(events)
    events.wait_state(ReaderState.CONNECTED)
    started = time.monotonic()
    reader.stop()
    assert time.monotonic() - started < 1.0
    assert not any(t.name == "pcsc-reader" for t in threading.enumerate())
    assert events.states[-1].state is ReaderState.STOPPED
