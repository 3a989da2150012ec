"""A real SMTP server for tests: aiosmtpd's Controller on a free local port, in its own thread.

It keeps every message it accepts, parsed, so a test reads the decoded subject and body as a
parent's mail client would.
"""

from __future__ import annotations

import email
import email.policy
import threading
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


class _Keeper:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content or envelope.content,
                                           policy=email.policy.default)
        with self._lock:
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


class SmtpServer:
    """``start()`` / ``stop()``; ``messages`` holds what was accepted, in order."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._keeper = _Keeper()
        self._controller: Controller | None = None

    @property
    def messages(self) -> list[EmailMessage]:
        return list(self._keeper.messages)

    def start(self) -> SmtpServer:
        self._controller = Controller(self._keeper, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())
