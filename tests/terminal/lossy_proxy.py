"""A TCP proxy on loopback that loses responses *after* the server has answered.

When the first bytes of a response come back from the server, the proxy decides (seeded RNG)
whether to drop it; a dropped response closes the client's connection instead of forwarding,
so the terminal sees a cut connection for a request the server did process — the "unknown
outcome" a terminal must resolve by resending the same refs.
"""

from __future__ import annotations

import random
import socket
import threading


class LossyProxy:
    def __init__(self, upstream_port: int, drop_ratio: float = 1 / 3, seed: int = 7) -> None:
        self.upstream_port = upstream_port
        self.drop_ratio = drop_ratio
        self.dropping = True
        self.forwarded = 0
        self.dropped = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            client.close()
            return
        state = {"awaiting": False}

        def requests() -> None:
            try:
                while data := client.recv(65536):
                    state["awaiting"] = True
                    upstream.sendall(data)
            except OSError:
                pass
            finally:
                _close(upstream)

        threading.Thread(target=requests, daemon=True).start()
        try:
            while data := upstream.recv(65536):
                if state["awaiting"]:
                    state["awaiting"] = False
                    with self._lock:
                        drop = self.dropping and self._rng.random() < self.drop_ratio
                        if drop:
                            self.dropped += 1
                        else:
                            self.forwarded += 1
                    if drop:
                        break
                client.sendall(data)
        except OSError:
            pass
        finally:
            _close(client)
            _close(upstream)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
