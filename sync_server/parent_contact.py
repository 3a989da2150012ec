"""A parent's email and phone as the roster keeps them: checked, normalised, and masked.

The console form and the CSV import check a parent contact with the same rules, so a file
cannot store what the form would refuse. Phones are kept as ``+`` and digits (spaces, dashes,
dots and brackets that people type are dropped; a leading ``00`` becomes ``+``), which is
what an SMS gateway wants and what makes two spellings of one number equal. Both are shown
masked to roles that do not manage the roster (managers and viewers), as in the logs.
"""

from __future__ import annotations

import re

from .i18n import _

LANGUAGES = ("ar", "en")  # the languages parent emails are written in
EMAIL_MAX = 320
# Deliberately plain: one "@", no spaces, a dot in the domain. Deliverability is the mail
# server's business; this catches typing slips (a missing "@", a pasted name).
_EMAIL = re.compile(r"^[^@\s<>,;\"]{1,64}@[^@\s<>,;\"]+\.[^@\s<>,;\".]{2,}$")
_PHONE_TYPED = re.compile(r"^\+?[0-9 ().\-]+$")


class ContactError(ValueError):
    """A contact that cannot be stored, in the reader's language."""


def parse_email(raw: str) -> str | None:
    """The address lower-cased, None for an empty cell, or ContactError."""
    value = raw.strip()
    if not value:
        return None
    if len(value) > EMAIL_MAX or not _EMAIL.match(value):
        raise ContactError(_("parent email %(text)r is not an email address",
                             text=value[:60]))
    return value.lower()


def parse_phone(raw: str) -> str | None:
    """The number as ``+`` and 8 to 15 digits (E.164's length), None for an empty cell, or
    ContactError. A number typed without ``+`` or ``00`` is kept as typed, with ``+``: the
    school's MIS exports are expected to hold international numbers."""
    value = raw.strip()
    if not value:
        return None
    if len(value) > 40 or not _PHONE_TYPED.match(value):
        raise ContactError(_("parent phone %(text)r is not a phone number", text=value[:40]))
    digits = re.sub(r"[^0-9]", "", value)
    if not value.startswith("+") and digits.startswith("00"):
        digits = digits[2:]
    if not 8 <= len(digits) <= 15:
        raise ContactError(_("parent phone %(text)r is not a phone number (8 to 15 digits "
                             "with the country code)", text=value[:40]))
    return "+" + digits


def parse_language(raw: str) -> str | None:
    value = raw.strip().lower()
    if not value:
        return None
    if value not in LANGUAGES:
        raise ContactError(_("language must be ar or en"))
    return value


def mask_email(value: str | None) -> str:
    """``f•••@example.com``: enough to tell two parents apart, not enough to write to."""
    if not value:
        return ""
    local, _at, domain = value.partition("@")
    return f"{local[:1]}•••@{domain}"


def mask_phone(value: str | None) -> str:
    """``+•••••••4567``: the last four digits only."""
    if not value:
        return ""
    return "+" + "•" * max(len(value) - 5, 0) + value[-4:]
