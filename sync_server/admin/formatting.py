"""Money, counts and moments as people in the page's language read them, by Babel (CLDR).

Digits: Western (0-9) in both languages. CLDR's ``ar`` locale itself now defaults to them,
and they are what Saudi school offices see on the till, on receipts and VAT invoices (ZATCA
e-invoices use them), in bank statements and in the CSV exports, so a figure can be checked
against any of those by eye; ``ar_SA``'s Arabic-Indic digits (٠١٢٣) would make the console the
one place that differs. Every function passes ``numbering_system="latn"`` explicitly.

Moments are shown in the school's time zone (``schools.timezone``), with the date in the
locale's words (``27 نوفمبر 2026`` / ``Nov 27, 2026``) and a 24-hour clock, which reads the
same in both languages. Exports never come through here: they keep integers, dot decimals
and ISO 8601 whatever the language (sales.py).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_skeleton
from babel.numbers import format_currency, format_decimal

from shared.money import exponent

from .. import i18n

DIGITS = "latn"  # see the module docstring
# CLDR's currency spacing, which Babel does not apply: a letter code before a digit gets a
# no-break space ("SAR 12.50", not "SAR12.50").
_CODE_THEN_DIGIT = re.compile(r"([A-Za-z])(?=\d)")


def money(amount: Any, currency: str = "", lang: str | None = None) -> str:
    """Minor units -> ``SAR 1,234.50`` / ``1,234.50 ر.س.``; ``—`` for no amount."""
    if amount is None or amount == "":
        return "—"
    locale = lang or i18n.current_language()
    exp = exponent(currency) if currency else 2
    value = Decimal(int(amount)).scaleb(-exp)
    if not currency:
        return format_decimal(value, format=_decimal_pattern(exp), locale=locale,
                              decimal_quantization=False, numbering_system=DIGITS)
    text = format_currency(value, currency, locale=locale, currency_digits=False,
                           format=_currency_pattern(locale, exp), numbering_system=DIGITS)
    return _CODE_THEN_DIGIT.sub("\\1\u00a0", text)


def amount(amount: Any, currency: str = "", lang: str | None = None) -> str:
    """Minor units as a bare number in the locale (``1,234.50``), for table cells whose
    column header names the currency."""
    if amount is None or amount == "":
        return "—"
    return _amount(int(amount), currency, lang or i18n.current_language())


@lru_cache(maxsize=8192)
def _amount(amount: int, currency: str, locale: str) -> str:
    """Remembered: a report or statement formats hundreds of amounts, many alike, and
    Babel takes tens of microseconds for each."""
    exp = exponent(currency) if currency else 2
    return format_decimal(Decimal(amount).scaleb(-exp), format=_decimal_pattern(exp),
                          locale=locale, decimal_quantization=False, numbering_system=DIGITS)


def number(value: Any, lang: str | None = None) -> str:
    """A count with the locale's grouping (``12,345``)."""
    if value is None or value == "":
        return "—"
    return format_decimal(value, locale=lang or i18n.current_language(),
                          numbering_system=DIGITS)


def when(moment: datetime | None, tz: str = "UTC", style: str = "full",
         lang: str | None = None) -> str:
    """A moment in the school's zone: ``Nov 27, 2026, 14:05:09``; ``short`` (or the old
    ``'%m-%d %H:%M'`` argument) gives ``Nov 27, 14:05``."""
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    locale = lang or i18n.current_language()
    local = moment.astimezone(ZoneInfo(tz))
    short = style == "short" or style.startswith("%m")
    return _when(local.date(), local.hour, local.minute, 0 if short else local.second, short,
                 locale)


@lru_cache(maxsize=8192)
def _when(day: date, hour: int, minute: int, second: int, short: bool, locale: str) -> str:
    """:func:`when` of a wall-clock time in the school's zone, remembered (a statement
    formats a time on each of its rows). The skeletons name no zone, so the local time
    formatted as UTC reads the same as the moment formatted in its zone."""
    wall = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)
    text_day = format_skeleton("MMMd" if short else "yMMMd", wall, tzinfo=UTC, locale=locale)
    clock = format_skeleton("Hm" if short else "Hms", wall, tzinfo=UTC, locale=locale)
    return str(i18n.babel_locale(locale).datetime_formats["medium"]).replace(
        "{1}", text_day).replace("{0}", clock)


def day(value: date | str | None, style: str = "medium", lang: str | None = None) -> str:
    """A calendar day (a business day): ``Friday, November 27, 2026`` with ``full``."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = date.fromisoformat(value)
    return format_date(value, style, locale=lang or i18n.current_language())


def _decimal_pattern(exp: int) -> str:
    return "#,##0" + ("." + "0" * exp if exp else "")


def _currency_pattern(locale: str, exp: int) -> str:
    """The locale's currency pattern with the currency's own number of decimals."""
    pattern = i18n.babel_locale(locale).currency_formats["standard"].pattern
    positive = pattern.split(";")[0]
    decimals = "." + "0" * exp if exp else ""
    return re.sub(r"[#,0]+(\.0+)?", "#,##0" + decimals, positive, count=1)


def major(amount: Any, currency: str = "") -> str:
    """Minor units as a plain dot-decimal (``1234.50``) whatever the language: the value of
    an amount field a person edits and posts back (parse_major reads it)."""
    if amount is None or amount == "":
        return ""
    exp = exponent(currency) if currency else 2
    sign = "-" if int(amount) < 0 else ""
    units, minor = divmod(abs(int(amount)), 10**exp)
    return f"{sign}{units}" + (f".{minor:0{exp}d}" if exp else "")
