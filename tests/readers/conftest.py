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
from tests.readers.virtual_bracelet import VPCD_PORT

VPCD_CONF = Path("/etc/reader.conf.d/vpcd")
RESERVED_PORTS = Path("/proc/sys/net/ipv4/ip_local_reserved_ports")


def pytest_configure(config: pytest.Config) -> None:
    _reserve_vpcd_port()


def _reserve_vpcd_port() -> None:
    """Keep the kernel from giving vpcd's fixed port to an outgoing connection.

    vpcd listens on 35963, inside Linux's ephemeral range (32768-60999). Any connection the
    suite opens before the PC/SC tests (httpx, asyncpg, Chromium) can get that port as its
    local one, and while that socket lingers in TIME_WAIT (60 s) pcscd cannot start vpcd:
    "Address already in use". That was the PC/SC tests failing in about one full run in three.
    Reserving the port (root, per network namespace; runs at collection, before any test)
    ends it; without the permission nothing changes.
    """
    try:
        current = RESERVED_PORTS.read_text().strip()
        for item in filter(None, current.split(",")):
            low, _, high = item.partition("-")
            if int(low) <= VPCD_PORT <= int(high or low):
                return
        RESERVED_PORTS.write_text(f"{current},{VPCD_PORT}" if current else str(VPCD_PORT))
    except OSError:
        pass


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
