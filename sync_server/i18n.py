"""The console's languages: gettext catalogs through Babel, chosen per request.

English is the source language (the msgids); Arabic comes from
``sync_server/admin/translations/ar/LC_MESSAGES/messages.po``. The install step compiles it
to ``messages.mo``; a developer checkout without the ``.mo`` compiles the ``.po`` in memory
at first use, so the console never falls back to English by accident (the log says which
one was used).

The language of the request being handled lives in a context variable: aiohttp runs each
request in its own task, so the console middleware sets it once and every template,
imported macro and flash message built during that request reads the same language without
passing it around. Outside a request (the CLI, tests) it is English.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel.messages import mofile, pofile
from babel.support import NullTranslations, Translations

log = logging.getLogger(__name__)

TRANSLATIONS_DIR = Path(__file__).parent / "admin" / "translations"
DOMAIN = "messages"
LANGUAGES = ("en", "ar")  # the console's languages; the first is the source and the default
DEFAULT_LANGUAGE = LANGUAGES[0]
RTL_LANGUAGES = frozenset({"ar"})
# Each language's name written in that language, for the switch on every page.
LANGUAGE_NAMES = {"en": "English", "ar": "العربية"}

# pip unpacks a wheel's files in archive order, so an installed ``.po`` may be a moment newer
# than the ``.mo`` built from it; only a ``.po`` edited well after the build makes the ``.mo``
# stale (a developer's edit: ``packaging/dev`` recompiles, and meanwhile the ``.po`` is used).
MO_MTIME_SLACK_S = 120

_language: ContextVar[str] = ContextVar("console_language", default=DEFAULT_LANGUAGE)


@cache
def translations(language: str) -> NullTranslations:
    """The catalog for ``language``: the compiled ``.mo`` if built, else the ``.po`` compiled
    in memory, else (English, or a missing catalog) the msgids themselves."""
    if language == DEFAULT_LANGUAGE or language not in LANGUAGES:
        return NullTranslations()
    folder = TRANSLATIONS_DIR / language / "LC_MESSAGES"
    mo, po = folder / f"{DOMAIN}.mo", folder / f"{DOMAIN}.po"
    if mo.exists() and (not po.exists()
                        or mo.stat().st_mtime >= po.stat().st_mtime - MO_MTIME_SLACK_S):
        with mo.open("rb") as f:
            log.info("console language %s: compiled catalog %s", language, mo.name)
            return Translations(f, domain=DOMAIN)
    if po.exists():
        with po.open("rb") as f:
            catalog = pofile.read_po(f, locale=language, domain=DOMAIN)
        buf = io.BytesIO()
        mofile.write_mo(buf, catalog)  # fuzzy entries left out, as pybabel compile does
        buf.seek(0)
        log.info("console language %s: %s compiled in memory (no up-to-date .mo)",
                 language, po.name)
        return Translations(buf, domain=DOMAIN)
    log.warning("console language %s: no catalog in %s, showing English", language, folder)
    return NullTranslations()


def current_language() -> str:
    return _language.get()


def set_language(language: str) -> None:
    """Make ``language`` the one of the request being handled (the console middleware)."""
    _language.set(language if language in LANGUAGES else DEFAULT_LANGUAGE)


@contextmanager
def language(lang: str) -> Iterator[None]:
    """Use ``lang`` for a block (tests, the CLI), restoring the previous one after."""
    token = _language.set(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)
    try:
        yield
    finally:
        _language.reset(token)


def direction(lang: str | None = None) -> str:
    return "rtl" if (lang or current_language()) in RTL_LANGUAGES else "ltr"


def babel_locale(lang: str | None = None) -> Locale:
    return Locale.parse(lang or current_language())


def gettext(message: str, **variables: Any) -> str:
    text = translations(current_language()).gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
    text = translations(current_language()).ngettext(singular, plural, n)
    return text % {"num": n, **variables}


def pgettext(context: str, message: str, **variables: Any) -> str:
    text = str(translations(current_language()).pgettext(context, message))
    return text % variables if variables else text


def npgettext(context: str, singular: str, plural: str, n: int, **variables: Any) -> str:
    text = str(translations(current_language()).npgettext(context, singular, plural, n))
    return text % {"num": n, **variables}


_ = gettext


def N_(message: str) -> str:
    """Marks a string for extraction where it is defined (a module constant) but translated
    where it is shown, with ``_()`` at that time, in the reader's language."""
    return message


def pick_language(accept_language: str | None) -> str:
    """The console language an ``Accept-Language`` header asks for first, or English."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    choices: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept_language.split(",")[:20]):
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _eq, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            choices.append((-quality, i, primary))
    return min(choices)[2] if choices else DEFAULT_LANGUAGE
