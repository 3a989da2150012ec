"""Pick a reader by configuration (``--reader pcsc|nfc|wedge|simulated`` plus device options).

Each kind's module is imported only when chosen: pyscard is an optional extra, and the
keyboard wedge pulls in Qt, which a headless ``reader-check`` must not need.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from terminal.readers.base import BraceletReader


@dataclass(frozen=True, slots=True)
class ReaderKind:
    name: str
    module: str
    class_name: str
    summary: str
    options: Mapping[str, str]  # option name -> help text
    device_option: str | None = None  # what a generic ``--device`` means for this kind


READER_KINDS: dict[str, ReaderKind] = {
    kind.name: kind
    for kind in (
        ReaderKind(
            "pcsc",
            "terminal.readers.pcsc",
            "PcscReader",
            "PC/SC reader through pcscd (ACR122U and other CCID readers)",
            {"reader": "part of the reader's name, e.g. 'ACR122'; default: the first reader"},
            device_option="reader",
        ),
        ReaderKind(
            "nfc",
            "terminal.readers.nfc",
            "NfcReader",
            "nfcpy reader (Sony RC-S380, PN533 and friends) on USB or serial",
            {
                "path": "usb, usb:054c:06c3, usb:BUS:DEVICE, tty:USB0:pn532 or udp:HOST:PORT",
                "targets": "technologies to poll; default 106A, 106B and 212F",
            },
            device_option="path",
        ),
        ReaderKind(
            "wedge",
            "terminal.readers.wedge",
            "WedgeReader",
            "USB reader that types the UID and Enter like a keyboard",
            {
                "max_gap_ms": "longest pause between a scan's keys; default 50",
                "min_length": "fewest hex characters in a scan; default 8",
            },
        ),
        ReaderKind(
            "simulated",
            "terminal.readers.simulated",
            "SimulatedReader",
            "no hardware: the demo taps bracelets from the screen",
            {},
        ),
    )
}

_INT_OPTIONS = {"max_gap_ms", "min_length"}


def create_reader(kind: str, **options: Any) -> BraceletReader:
    """Build the reader of ``kind``; raises ValueError with a sentence a person can act on."""
    spec = READER_KINDS.get(kind)
    if spec is None:
        raise ValueError(
            f"There is no reader kind {kind!r}; choose one of {', '.join(READER_KINDS)}."
        )
    options = {key: value for key, value in options.items() if value is not None}
    if "device" in options:  # the command line's generic --device, named per kind
        if spec.device_option is None:
            raise ValueError(f"The {kind} reader has no device to choose; leave out --device.")
        if spec.device_option in options:
            raise ValueError(
                f"Give the {kind} reader's device once, not as both device and "
                f"{spec.device_option}."
            )
        options[spec.device_option] = options.pop("device")
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        takes = ", ".join(spec.options) if spec.options else "no options"
        raise ValueError(
            f"The {kind} reader does not take the option {unknown[0]!r}; it takes {takes}."
        )
    for key in _INT_OPTIONS & set(options):
        try:
            options[key] = int(options[key])
        except (TypeError, ValueError):
            raise ValueError(f"The option {key!r} must be a whole number.") from None
        if options[key] <= 0:
            raise ValueError(f"The option {key!r} must be greater than zero.")
    if isinstance(options.get("targets"), str):
        options["targets"] = tuple(t.strip() for t in options["targets"].split(",") if t.strip())
    try:
        module = importlib.import_module(spec.module)
    except ImportError as error:
        hint = " (pip install 'cafeteria-pos[pcsc]')" if kind == "pcsc" else ""
        raise ValueError(
            f"The {kind} reader cannot be used here: {error.name or error} is not installed{hint}."
        ) from error
    reader_class = getattr(module, spec.class_name)
    reader: BraceletReader = reader_class(**options)
    return reader
