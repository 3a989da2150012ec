"""Errors the terminal core raises to its callers (the CLI and, later, the cashier app).

Each carries a sentence a cashier or an operator can act on; none ever contains a token, a
PIN or a full bracelet UID.
"""

from __future__ import annotations

from collections.abc import Mapping

from terminal.selling.rules import Refusal


class TerminalError(Exception):
    """Base: ``str(error)`` is the one-line message to show."""


class NotEnrolled(TerminalError):
    def __init__(self) -> None:
        super().__init__("this terminal is not enrolled: run 'pos-terminal enroll' first")


class AlreadyEnrolled(TerminalError):
    pass


class SaleRefused(TerminalError):
    """An offline rule refused the sale; nothing was written and no seq was used.

    ``refusal`` keeps the template key and values beside the English ``message``, so the
    cashier app can say it in the cashier's language."""

    def __init__(self, code: str, message: str, refusal: Refusal | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.refusal = refusal if refusal is not None else Refusal(code, message, code, {})

    @property
    def key(self) -> str:
        return self.refusal.key

    @property
    def values(self) -> Mapping[str, str]:
        return self.refusal.values

    @classmethod
    def because(cls, refusal: Refusal) -> SaleRefused:
        return cls(refusal.code, refusal.message, refusal)


class ServerUnreachable(TerminalError):
    """No usable answer (connection refused, timeout, cut, 5xx, 429): the outcome of a push is
    unknown, so the same refs are sent again later."""


class DeviceNotAuthorized(TerminalError):
    """401/403: the queue is kept untouched and the state is shown to the cashier."""

    def __init__(self, problem: str, message: str) -> None:
        super().__init__(message)
        self.problem = problem  # 'revoked' or 'unauthorized'


class EnrollmentRefused(TerminalError):
    pass


class ServerRefusedRequest(TerminalError):
    """A 4xx other than auth (422, 413): our request itself was refused; retrying the same
    bytes cannot help, so the operator has to look."""
