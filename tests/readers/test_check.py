"""check_reader with a real reader (the nfcpy udp stack) and with the simulated one."""

from __future__ import annotations

import threading

from terminal.readers.check import check_reader
from terminal.readers.factory import create_reader
from terminal.readers.nfc import NfcReader
from terminal.readers.simulated import SimulatedReader
from tests.readers.type2_tag import SimulatedType2Tag, free_udp_port

UID = "04A1B2C3D4E580"


def test_a_read_bracelet_passes_the_check_and_is_shown_masked() -> None:
    tag = SimulatedType2Tag(UID, free_udp_port())
    tag.place()
    lines: list[str] = []
    try:
        code = check_reader(
            NfcReader(f"udp:127.0.0.1:{tag.port}", targets=("106A",)), 1.5, lines.append
        )
    finally:
        tag.close()
    assert code == 0
    assert "bracelet read: 04A1…E580" in lines
    assert any(line.startswith("reader connected:") for line in lines)
    assert not any(UID in line for line in lines)


def test_no_bracelet_fails_the_check_and_says_the_last_state() -> None:
    reader = SimulatedReader()
    lines: list[str] = []

    def unplug_soon() -> None:
        reader.disconnect("no reader connected")

    threading.Timer(0.2, unplug_soon).start()
    assert check_reader(reader, 0.6, lines.append) == 1
    assert "reader disconnected: no reader connected" in lines
    assert lines[-1] == (
        "No bracelet was read in 0.6 s. Reader was disconnected, no reader connected."
    )


def test_wedge_is_sent_to_the_window() -> None:
    lines: list[str] = []
    assert check_reader(create_reader("wedge"), 5, lines.append) == 1
    assert "checked there" in lines[0]
