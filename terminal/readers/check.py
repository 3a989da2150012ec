"""``pos-terminal reader-check``: prove a reader works before the counter opens.

Events arrive on the reader's worker thread; they go through a queue so that ``echo`` (print,
usually) is only ever called from the caller's thread. Qt-free on purpose: it runs over SSH on
a terminal with no screen. The keyboard wedge lives in Qt's event loop, so it is checked from
the terminal's window (type-and-Enter into the status bar's reader test), not here.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable

from shared.ids import mask_uid
from terminal.readers.base import BraceletReader, ReaderEvent, StateChange, Tap


def check_reader(reader: BraceletReader, seconds: float, echo: Callable[[str], None]) -> int:
    """Run ``reader`` for ``seconds``, echoing its states and taps; 0 if a bracelet was read."""
    if reader.kind == "wedge":
        echo(
            "The keyboard-wedge reader types into the terminal's window, so it can only be "
            "checked there: open the terminal and tap a bracelet. Nothing was read here."
        )
        return 1
    events: queue.Queue[ReaderEvent] = queue.Queue()
    taps = 0
    last_state = "no state reported"
    echo(f"Checking the {reader.kind} reader for {seconds:g} s: tap a bracelet now.")
    deadline = time.monotonic() + seconds
    reader.start(events.put)
    try:
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = events.get(timeout=min(left, 0.25))
            except queue.Empty:
                continue
            if isinstance(event, Tap):
                taps += 1
                echo(f"bracelet read: {mask_uid(event.uid)}")
            elif isinstance(event, StateChange):
                last_state = f"{event.state.value}, {event.message}"
                echo(f"reader {event.state.value}: {event.message}")
    finally:
        reader.stop()
    if taps:
        echo(f"OK: {taps} bracelet read(s).")
        return 0
    echo(f"No bracelet was read in {seconds:g} s. Reader was {last_state}.")
    return 1
