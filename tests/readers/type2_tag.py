"""A simulated NTAG213 bracelet (Type 2, 7-byte UID) answering nfcpy's udp driver.

nfcpy's card emulation cannot do Type 2 over udp, so this thread plays the tag: it answers the
driver's ``106A <hex>`` datagrams for detection, both cascade levels of anticollision/select,
GET_VERSION and READ. "Removing" the tag means it stops answering, as a tag leaving the field.
"""

from __future__ import annotations

import functools
import operator
import socket
import threading
import time

NTAG213_VERSION = bytes.fromhex("0004040201000F03")


def free_udp_port() -> int:
    """A free UDP port that nfcpy's udp driver can use. The driver reads its port back through
    ``getnameinfo`` without ``NI_NUMERICSERV``, so a port with a name in /etc/services (60177
    is 'tfido') comes back as that name and its ``int(port)`` fails: such ports are skipped
    (the cause of a rare CI failure)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if socket.getnameinfo(("127.0.0.1", port), socket.NI_NUMERICHOST)[1].isdigit():
            return port


def _bcc(data: bytes) -> int:
    return functools.reduce(operator.xor, data, 0)


class SimulatedType2Tag:
    def __init__(self, uid_hex: str, port: int) -> None:
        uid = bytes.fromhex(uid_hex)
        assert len(uid) == 7
        self.uid = uid
        self.port = port
        self.present = False
        self.placed_at = 0.0
        self.removed_at = 0.0
        self.first_poll_after_removal = 0.0  # when the reader went back to polling
        self.polls = 0
        cl1 = b"\x88" + uid[:3]
        cl2 = uid[3:]
        self._sdd1 = cl1 + bytes([_bcc(cl1)])
        self._sdd2 = cl2 + bytes([_bcc(cl2)])
        # NTAG213 memory: UID/BCC/lock pages, capability container, empty NDEF message.
        memory = bytearray(180)
        memory[0:9] = uid[:3] + bytes([_bcc(b"\x88" + uid[:3])]) + uid[3:] + bytes([_bcc(uid[3:])])
        memory[12:16] = bytes.fromhex("E1101200")
        memory[16:19] = bytes.fromhex("0300FE")
        self._memory = bytes(memory)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", port))
        self._sock.settimeout(0.1)
        self._running = True
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def place(self) -> None:
        self.placed_at = time.monotonic()
        self.first_poll_after_removal = 0.0
        self.present = True

    def remove(self) -> None:
        self.removed_at = time.monotonic()
        self.present = False

    def close(self) -> None:
        self._running = False
        self._thread.join(timeout=2.0)
        self._sock.close()

    def _serve(self) -> None:
        while self._running:
            try:
                datagram, addr = self._sock.recvfrom(1024)
            except (TimeoutError, OSError):
                continue
            if datagram.startswith(b"RFOFF"):
                continue
            try:
                brty, hexdata = datagram.split()
            except ValueError:
                continue
            if brty != b"106A":
                continue
            command = bytes.fromhex(hexdata.decode())
            if command == b"\x26":
                self.polls += 1
                if not self.present and self.removed_at and not self.first_poll_after_removal:
                    self.first_poll_after_removal = time.monotonic()
            if not self.present:
                continue
            reply = self._answer(command)
            if reply is not None:
                self._sock.sendto(b"106A " + reply.hex().encode(), addr)

    def _answer(self, command: bytes) -> bytes | None:
        if command in (b"\x26", b"\x52"):
            return bytes.fromhex("4400")  # SENS_RES of an NTAG
        if command == b"\x93\x20":
            return self._sdd1
        if command == b"\x93\x70" + self._sdd1:
            return b"\x04"  # SEL_RES: UID not complete
        if command == b"\x95\x20":
            return self._sdd2
        if command == b"\x95\x70" + self._sdd2:
            return b"\x00"  # SEL_RES: Type 2 tag, UID complete
        if command == b"\x60":
            return NTAG213_VERSION
        if len(command) == 2 and command[0] == 0x30:
            start = command[1] * 4
            return (self._memory + self._memory)[start : start + 16]
        return None
