"""Parents' email addresses and phone numbers masked in every log line.

The roster holds parent contacts (issue 16), and a log line may quote one: an import's
refused cell, an SMTP server's "recipient refused", a search term in a path. Logs are read by
people who may not see the roster, and are shipped to other systems, so every record is
masked on its way to a handler: its message, its ``extra`` fields (the JSON format's keys)
and its traceback. The masks keep enough to tell two contacts apart in an incident
(``p***@example.org``, ``+9665******67``), never enough to write to one.

What counts as a phone is deliberately narrow, so dates, durations and IDs stay readable: an
international number (``+`` or ``00`` and 8 to 15 digits, spaces or dashes between) or a
Saudi mobile written locally (``05`` and 8 digits).
"""

from __future__ import annotations

import logging
import re
from contextlib import suppress
from typing import Any

_EMAIL = re.compile(r"([A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*@([A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+)")
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)\d(?:[ \-]?\d){7,14}(?!\w)|(?<!\w)05\d{8}(?!\w)")
KEEP_HEAD = 5  # "+9665": the country and the network
KEEP_TAIL = 2

# LogRecord attributes that are not free text a caller filled in.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime"}


def mask_email(value: str) -> str:
    """``parent@example.org`` -> ``p***@example.org``; a text without one is returned as is."""
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", value)


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = re.sub(r"[ \-]", "", text)
    hidden = max(len(digits) - KEEP_HEAD - KEEP_TAIL, 3)
    return digits[:KEEP_HEAD] + "*" * hidden + digits[-KEEP_TAIL:]


def mask_phone(value: str) -> str:
    """``+966501234567`` -> ``+9665******67``; a text without one is returned as is."""
    return _PHONE.sub(_phone, value)


def mask_contacts(text: str) -> str:
    """Every email address and phone number in ``text`` masked."""
    if "@" in text:
        text = mask_email(text)
    if any(c.isdigit() for c in text):
        text = mask_phone(text)
    return text


def _masked(value: Any) -> Any:
    return mask_contacts(value) if isinstance(value, str) else value


class MaskContacts(logging.Filter):
    """A handler filter: the record's message is formatted once and masked (so a contact in
    an argument is masked too), as are string ``extra`` fields and the traceback. Never drops
    a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        # A record that cannot be formatted is the formatter's to report.
        with suppress(Exception):
            record.msg = mask_contacts(record.getMessage())
            record.args = None
            for key, value in list(vars(record).items()):
                if key not in _RECORD_FIELDS and isinstance(value, str):
                    setattr(record, key, _masked(value))
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = mask_contacts(record.exc_text)
                record.exc_info = None  # formatters use exc_text, the masked one
            if record.stack_info:
                record.stack_info = mask_contacts(record.stack_info)
        return True


def mask_handlers(*loggers: logging.Logger) -> None:
    """Add the filter to every handler of ``loggers`` (the root's by default) that has none."""
    for logger in loggers or (logging.getLogger(),):
        for handler in logger.handlers:
            if not any(isinstance(f, MaskContacts) for f in handler.filters):
                handler.addFilter(MaskContacts())
