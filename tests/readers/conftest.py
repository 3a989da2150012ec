"""Fixtures that run the readers' real stacks: pcscd with vsmartcard's virtual reader, nfcpy's
udp transport, Qt offscreen. Each skips with the reason and the fix only when its stack is
missing on this machine."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before any QApplication exists (pytest-qt creates it lazily): no display needed.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tests.readers.event_log import EventLog
from tests.readers.pcscd_process import Pcscd

VPCD_CONF = Path("/etc/reader.conf.d/vpcd")


@pytest.fixture
def events() -> EventLog:
    return EventLog()


def _pcsc_unavailable() -> str | None:
    if shutil.which("pcscd") is None:
        return "pcscd is not installed (apt-get install pcscd vsmartcard-vpcd)"
    if not VPCD_CONF.exists():
        return "vsmartcard's virtual reader is not installed (apt-get install vsmartcard-vpcd)"
    try:
        from smartcard import scard
    except ImportError:
        return (
            "pyscard is not installed (apt-get install libpcsclite-dev swig, then "
            "pip install 'cafeteria-pos[pcsc]')"
        )
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult == scard.SCARD_S_SUCCESS:
        scard.SCardReleaseContext(context)
        return (
            "another pcscd is already running; stop it to run these tests, which start "
            "and stop their own pcscd"
        )
    return None


@pytest.fixture
def pcscd() -> Iterator[Pcscd]:
    """Not started: each test decides when the reader service comes up."""
    reason = _pcsc_unavailable()
    if reason:
        pytest.skip(f"PC/SC stack unavailable: {reason}")
    daemon = Pcscd()
    try:
        yield daemon
    finally:
        daemon.stop()
