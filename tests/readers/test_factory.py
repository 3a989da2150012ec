from __future__ import annotations

import pytest

from terminal.readers.factory import READER_KINDS, create_reader
from terminal.readers.nfc import NfcReader
from terminal.readers.simulated import SimulatedReader


def test_every_kind_is_registered_and_built_by_its_name() -> None:
    assert set(READER_KINDS) == {"pcsc", "nfc", "wedge", "simulated"}
    for name in ("nfc", "wedge", "simulated"):
        reader = create_reader(name)
        assert reader.kind == name


def test_pcsc_kind_with_a_reader_name() -> None:
    pytest.importorskip("smartcard", reason="pyscard missing: pip install 'cafeteria-pos[pcsc]'")
    assert create_reader("pcsc", reader="ACR122").describe() == "pcsc: not started"


def test_device_options_reach_the_reader() -> None:
    nfc_reader = create_reader("nfc", path="udp:127.0.0.1:54321", targets="106A, 212F")
    assert isinstance(nfc_reader, NfcReader)
    assert (nfc_reader.path, nfc_reader.targets) == ("udp:127.0.0.1:54321", ("106A", "212F"))
    wedge = create_reader("wedge", max_gap_ms="80")
    assert wedge.max_gap_ms == 80  # type: ignore[attr-defined]
    assert isinstance(create_reader("simulated", reader=None), SimulatedReader)  # unset = absent


def test_generic_device_option_means_the_kinds_device() -> None:
    reader = create_reader("nfc", device="udp:127.0.0.1:40000")
    assert isinstance(reader, NfcReader) and reader.path == "udp:127.0.0.1:40000"


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("rfid", {}, "There is no reader kind 'rfid'; choose one of pcsc, nfc, wedge, simulated."),
        (
            "pcsc",
            {"path": "usb"},
            "The pcsc reader does not take the option 'path'; it takes reader.",
        ),
        ("simulated", {"reader": "x"}, "it takes no options"),
        ("wedge", {"device": "/dev/input/event3"}, "The wedge reader has no device to choose"),
        ("nfc", {"device": "usb", "path": "usb"}, "not as both device and path"),
        ("nfc", {"path": "serial0"}, "path 'serial0' is not understood"),
        ("nfc", {"targets": "106X"}, "cannot poll for ['106X']"),
        ("wedge", {"max_gap_ms": "fast"}, "The option 'max_gap_ms' must be a whole number."),
        ("wedge", {"min_length": 0}, "must be greater than zero"),
    ],
)
def test_bad_kind_or_option_is_a_plain_sentence(kind: str, options: dict, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        create_reader(kind, **options)
    assert message in str(raised.value)
