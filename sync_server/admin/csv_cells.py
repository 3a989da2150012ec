"""Cells of an exported CSV that a spreadsheet shows as text, never runs as a formula.

Student, cashier and device names are typed by people outside the school office (a roster
file, a terminal's enrollment), and a spreadsheet runs a cell starting with ``=`` as a
formula (``=HYPERLINK(...)`` sends data away; DDE formulas ran programs). The OWASP rule is to
prefix such a cell with ``'``. Spreadsheets are more lenient about what starts a formula than
that rule's usual check, so this one also looks:

- past leading white space and invisible characters (``" =1+1"``, ``"\\u200b=1+1"``);
- at the full-width and small forms East Asian and Arabic keyboards type (``＝ ＋ － ＠``,
  ``﹦``), by Unicode compatibility folding (NFKC), and at the minus sign ``−``;
- at every fragment after a ``;``, a tab or a line break: a spreadsheet in a locale whose list
  separator is ``;`` splits an unquoted cell there, and importers split lines, so each
  fragment may become a cell of its own; a dangerous fragment gets its own ``'``.

Numbers written by the export itself (``-12.50``) stay numbers.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

FORMULA_STARTS = frozenset("=+-@|%\u2212")
# Where another program may start a new cell or row inside one of ours.
FRAGMENT_SEPARATORS = re.compile(r"([;\t\r\n])")
NUMBER = re.compile(r"-?\d+(\.\d+)?")


def safe_cell(value: Any) -> Any:
    """``None`` -> ``""``; a string that could start a formula anywhere a spreadsheet may cut
    it -> the same text with ``'`` before each such fragment; anything else unchanged."""
    if value is None:
        return ""
    if not isinstance(value, str) or NUMBER.fullmatch(value):
        return value
    parts = FRAGMENT_SEPARATORS.split(value)
    for i in range(0, len(parts), 2):  # even indexes are text, odd ones the separators
        if _starts_formula(parts[i]):
            parts[i] = "'" + parts[i]
    cell = "".join(parts)
    if cell[:1] in ("\t", "\r", "\n"):  # a cell starting with a cut: the whole cell is text
        cell = "'" + cell
    return cell


def _starts_formula(fragment: str) -> bool:
    for ch in fragment:
        if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf"):
            continue
        return unicodedata.normalize("NFKC", ch)[:1] in FORMULA_STARTS
    return False
