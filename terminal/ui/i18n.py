"""The till's language: Qt translations, layout direction and a font that renders it.

The cashier app speaks English (the source language of every ``tr()`` string) and Arabic.
Qt's own translation system does the work: ``terminal/ui/translations/terminal_<lang>.ts`` are
the sources kept in the repository (``packaging/i18n update`` refreshes them from the code),
and the install step compiles them into ``.qm`` files with ``pyside6-lrelease``
(``packaging/i18n build``); binaries are never committed. Qt's own ``qtbase_<lang>.qm``, which
PySide6 ships, is loaded too, so the standard dialog buttons (OK, Cancel, Yes) speak the same
language as the rest.

:func:`switch` installs the translators, mirrors the layout for a right-to-left language and
picks a font with the script's letters. Qt then sends ``QEvent.LanguageChange`` to every
widget, and each widget redraws its texts in its ``retranslate()`` method (the pattern every
widget in ``terminal/ui`` follows), so a language switch needs no restart.

Numbers stay in Western digits in both languages (``12.50 SAR``): that is what Saudi till
receipts, price tags and card terminals print, what the school's office exports, and it keeps
one amount looking the same on the till and in the console. So the default ``QLocale`` is left
alone: an Arabic ``QLocale`` would turn spin-box digits into Arabic-Indic ones.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QCoreApplication,
    QEvent,
    QItemSelectionModel,
    QLibraryInfo,
    Qt,
    QTranslator,
)
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QApplication, QTableView

from terminal.settings import LANGUAGES as LANGUAGES  # re-exported: the supported ones
from terminal.ui import theme

if TYPE_CHECKING:
    from terminal.core import Terminal

log = logging.getLogger(__name__)

SOURCE_LANGUAGE = "en"
# Each language's name in that language: a cashier who cannot read the current one still
# recognises their own on the switch.
NATIVE_NAMES = {"en": "English", "ar": "العربية"}
RIGHT_TO_LEFT = frozenset({"ar"})
TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"

# The first installed family wins. Noto Sans Arabic (Debian fonts-noto-core, installed by
# packaging/dev) matches the plain sans look of the English screens; Naskh and Kufi are the
# same package's other styles, KacstOne is Debian's fonts-kacst. DejaVu Sans has basic Arabic
# letters, enough to stay readable if none of the others is installed.
SCRIPT_FONTS = {
    "ar": ("Noto Sans Arabic", "Noto Naskh Arabic", "Noto Kufi Arabic", "KacstOne",
           theme.FONT_FAMILY),
}

# The translators installed now; kept referenced here, since Qt does not own them and a
# collected QTranslator would silently stop translating.
_installed: list[QTranslator] = []
_current = SOURCE_LANGUAGE


def normalise(language: str | None) -> str:
    """A supported language code for whatever was stored or typed ("ar_SA", "AR", None)."""
    code = (language or "").strip().lower().replace("-", "_").split("_")[0]
    return code if code in LANGUAGES else SOURCE_LANGUAGE


def qm_path(language: str) -> Path:
    return TRANSLATIONS_DIR / f"terminal_{language}.qm"


def ts_path(language: str) -> Path:
    return TRANSLATIONS_DIR / f"terminal_{language}.ts"


def font_family(language: str) -> str:
    """The font for ``language``'s script: the first of :data:`SCRIPT_FONTS` installed."""
    installed = set(QFontDatabase.families())
    for family in SCRIPT_FONTS.get(language, ()):
        if family in installed:
            return family
    return theme.FONT_FAMILY


def current() -> str:
    return _current


def is_right_to_left(language: str) -> bool:
    return normalise(language) in RIGHT_TO_LEFT


def switch(app: QApplication, language: str | None) -> str:
    """Show the whole app in ``language``; returns the language actually used.

    A language whose compiled catalogue is missing (the install step did not run) falls back
    to English with one warning, rather than a half-translated screen.
    """
    global _current
    wanted = normalise(language)
    for translator in _installed:
        app.removeTranslator(translator)
    _installed.clear()
    used = SOURCE_LANGUAGE
    if wanted != SOURCE_LANGUAGE:
        ours = QTranslator(app)
        if ours.load(str(qm_path(wanted))):
            used = wanted
            qt_own = QTranslator(app)
            qt_dir = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
            if qt_own.load(f"qtbase_{wanted}", qt_dir):
                app.installTranslator(qt_own)
                _installed.append(qt_own)
            app.installTranslator(ours)  # installed last, so it is asked first
            _installed.append(ours)
        else:
            log.warning("no compiled translations at %s (run packaging/i18n build); "
                        "the till stays in English", qm_path(wanted))
    _current = used
    app.setLayoutDirection(Qt.LayoutDirection.RightToLeft if used in RIGHT_TO_LEFT
                           else Qt.LayoutDirection.LeftToRight)
    theme.apply(app, font_family(used))
    # installTranslator already posts LanguageChange; removing the last one (back to
    # English) does too, but say it once more for the case where nothing was installed
    # or removed, so every widget is redrawn in the language now in force.
    if not _installed:
        QCoreApplication.postEvent(app, QEvent(QEvent.Type.LanguageChange))
    return used


# The language is a setting of this terminal, kept by the core with its other local settings
# (a till stands in one school's counter; the cashiers who use it share a language).

def stored_language(terminal: Terminal) -> str:
    return normalise(terminal.local_settings().language)


def choose(terminal: Terminal, language: str) -> str:
    """Switch the running app to ``language`` and store it as this terminal's language."""
    app = QApplication.instance()
    used = switch(app, language) if isinstance(app, QApplication) else normalise(language)
    terminal.update_local_settings(language=used)
    return used


def isolate(text: str) -> str:
    """``text`` as one unit inside a sentence (Unicode first-strong isolate, U+2068..U+2069).

    Without it the bidirectional algorithm reorders a value by its neighbours: "2.00 SAR"
    inside Arabic came out as "SAR 2.00", and in the lookup's "name · grade · homeroom ·
    04AA…0003 · 40.00 SAR" an Arabic homeroom ran into the UID. Each value filled into a
    translated sentence, and each part of a list line, is isolated; Qt draws the marks as
    nothing."""
    return f"\u2068{text}\u2069"


def select_row(view: QTableView, row: int) -> None:
    """``view.selectRow(row)``, also right to left.

    In a right-to-left table, ``QTableView.selectRow`` selects nothing (PySide6 6.11; a
    plain QStandardItemModel shows it too), so in Arabic V found no sale to void and the
    cart's +/- acted on the last line instead of the chosen one. Selecting through the
    selection model works in both directions."""
    index = view.model().index(row, 0)
    if not index.isValid():
        return
    flags = (QItemSelectionModel.SelectionFlag.ClearAndSelect
             | QItemSelectionModel.SelectionFlag.Rows)
    view.selectionModel().setCurrentIndex(index, flags)
