"""A bracelet on vsmartcard's virtual PC/SC reader: a tiny vpcd client.

Connecting to the vpcd port places the card on ``Virtual PCD 00 00``; closing the socket takes
it away. pcscd then drives the card through vpcd framing (2-byte big-endian length + payload).
"""

from __future__ import annotations

import socket
import struct
import threading
import time

VPCD_PORT = 35963
# A contactless storage card ATR, as ACR122U-style readers report for MIFARE/NTAG.
ATR = bytes.fromhex("3B8F8001804F0CA0000003060300030000000068")
GET_UID = bytes.fromhex("FFCA000000")


class VirtualBracelet:
    def __init__(self, uid_hex: str, port: int = VPCD_PORT) -> None:
        self.uid = bytes.fromhex(uid_hex)
        self.port = port
        self.uid_requests = 0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.placed_at = 0.0

    def place(self, timeout: float = 5.0) -> None:
        """Connect to vpcd (retrying while pcscd is still starting) and serve pcscd."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=1.0)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        sock.settimeout(None)
        self._sock = sock
        self.placed_at = time.monotonic()
        self._thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
        self._thread.start()

    def remove(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def _serve(self, sock: socket.socket) -> None:
        try:
            while True:
                header = _recv_exact(sock, 2)
                (length,) = struct.unpack(">H", header)
                payload = _recv_exact(sock, length)
                if length == 1:
                    if payload[0] == 0x04:  # "send your ATR"
                        _send(sock, ATR)
                    continue  # power off / on / reset: no reply
                if payload == GET_UID:
                    self.uid_requests += 1
                    _send(sock, self.uid + b"\x90\x00")
                else:
                    _send(sock, b"\x6a\x81")  # function not supported
        except OSError:
            return  # socket closed: the bracelet was taken away or pcscd stopped


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("vpcd closed the connection")
        data += chunk
    return data


def _send(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(struct.pack(">H", len(payload)) + payload)
