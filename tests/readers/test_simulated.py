from __future__ import annotations

import pytest

from terminal.readers.base import ReaderState, StateChange, Tap
from terminal.readers.simulated import SimulatedReader
from tests.readers.event_log import EventLog


def test_taps_normalized_and_none_while_disconnected(events: EventLog) -> None:
    reader = SimulatedReader()
    assert reader.tap("04a1b2c3") is False  # not started: like a reader still in its box
    reader.start(events)
    assert reader.tap("04:a1:b2:c3:d4:e5:80") is True
    reader.disconnect()
    assert reader.tap("04A1B2C3D4E580") is False
    assert reader.describe() == "simulated: no reader connected"
    reader.reconnect()
    assert reader.tap("0A0B0C0D") is True
    reader.stop()
    assert reader.tap("0A0B0C0D") is False
    assert [e for _, e in events.events] == [
        StateChange(ReaderState.CONNECTED, "simulated reader ready"),
        Tap("04A1B2C3D4E580"),
        StateChange(ReaderState.DISCONNECTED, "no reader connected"),
        StateChange(ReaderState.CONNECTED, "simulated reader ready"),
        Tap("0A0B0C0D"),
        StateChange(ReaderState.STOPPED, "stopped"),
    ]


def test_malformed_uid_is_refused(events: EventLog) -> None:
    reader = SimulatedReader()
    reader.start(events)
    with pytest.raises(ValueError):
        reader.tap("not a uid")
    assert events.taps == []


def test_started_twice_is_an_error(events: EventLog) -> None:
    reader = SimulatedReader()
    reader.start(events)
    with pytest.raises(RuntimeError):
        reader.start(events)
