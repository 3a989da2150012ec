"""The printable layout every PDF report shares: A4, a header, tables, page numbers.

fpdf2 draws the pages; its text shaping (harfbuzz through uharfbuzz, and its own Unicode
bidi algorithm) joins Arabic letters and orders mixed Arabic/Latin text, which no PDF
library does without a shaping engine. An Arabic report is laid out right to left like the
console: columns start at the right edge, words align right, and amounts keep their own
direction (a minus stays in front) and align to the page's end edge, as admin.css does.
Numbers use Western digits in both languages (sync_server/admin/formatting.py says why).

Fonts are Noto Sans (Latin) and Noto Sans Arabic from Debian's ``fonts-noto-core``; each is
the other's fallback, so an Arabic student name on an English statement, or a Latin product
name on an Arabic Z report, is drawn with the right letters. A server without them fails
with :class:`FontsMissing`, naming the package, instead of printing empty boxes.

A report is a small bounded document (a day of one school, a month of one wallet), so it is
built in memory and returned as bytes.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any, cast

from fontTools.ttLib import TTFont
from fpdf import FPDF
from fpdf.enums import Align, PDFResourceType, XPos, YPos
from fpdf.fonts import SubsetMap, TTFFont

from .. import i18n
from ..admin import formatting
from ..i18n import _

FONT_PACKAGE = "fonts-noto-core"
FONT_ROOTS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
# (family, style) -> file name; the families are fpdf2 font keys (lower case, no B/I).
FONT_FILES = {
    ("notosans", ""): "NotoSans-Regular.ttf",
    ("notosans", "B"): "NotoSans-Bold.ttf",
    ("notoarabic", ""): "NotoSansArabic-Regular.ttf",
    ("notoarabic", "B"): "NotoSansArabic-Bold.ttf",
}

MARGIN = 14.0  # mm on every side of an A4 page (210 x 297)
BODY_SIZE = 9.0  # pt: a Z report with a dozen tills and twenty cashiers fits one page
ROW_HEIGHT = 5.2  # mm per table row at BODY_SIZE
LINE_GREY = 170
ELLIPSIS = "…"
# Texts that need neither bidi nor shaping when their paragraph runs left to right: ASCII,
# Latin-1, Latin Extended-A/B and Additional (precomposed letters only: no combining marks,
# which harfbuzz positions), Greek and Cyrillic, dashes, quotes, "·", "…", "‰" and currency
# signs. Bidi controls (U+200E/F, U+202A-E, U+2066-9) are outside it.
PLAIN = re.compile("[\x20-\x7e\xa0-\u024f\u0370-\u0482\u048a-\u052f\u1e00-\u1eff"
                   "\u2010-\u2027\u2030-\u205e\u20a0-\u20cf]*")


class FontsMissing(RuntimeError):
    """The Noto fonts are not installed: the message names them and the Debian package."""


@dataclass(frozen=True, slots=True)
class Column:
    """A table column: its header, its share of the page width, and whether it holds
    amounts (aligned to the end edge, in their own direction)."""

    title: str
    share: float = 1.0
    numeric: bool = False


@cache
def font_paths(roots: tuple[Path, ...] = FONT_ROOTS) -> dict[tuple[str, str], Path]:
    """Where the four font files are, looked up once per process (fontconfig is not asked:
    its Python binding is one more native dependency, and Debian's paths are stable)."""
    wanted = set(FONT_FILES.values())
    found: dict[str, Path] = {}
    for root in roots:
        if root.is_dir():
            for path in root.rglob("NotoSans*.ttf"):
                if path.name in wanted:
                    found.setdefault(path.name, path)
    missing = sorted(wanted - found.keys())
    if missing:
        raise FontsMissing(
            f"PDF reports need the Noto fonts {', '.join(missing)}, not found under "
            f"{', '.join(str(r) for r in roots)}: install the Debian package {FONT_PACKAGE} "
            f"(apt-get install {FONT_PACKAGE})")
    return {key: found[name] for key, name in FONT_FILES.items()}


@cache
def parsed_fonts() -> dict[str, tuple[TTFFont, bytes]]:
    """The four fonts as fpdf2 parses them (``add_font``: about 70 ms each), once per
    process, with each file's bytes; :func:`add_fonts` gives every document its own copy."""
    holder = FPDF()
    out: dict[str, tuple[TTFFont, bytes]] = {}
    for (family, style), path in font_paths().items():
        holder.add_font(family, style, str(path))
        parsed = holder.fonts[family + style]
        assert isinstance(parsed, TTFFont)
        parsed.hbfont  # noqa: B018  # harfbuzz's face, built once (read only, shared)
        out[family + style] = (parsed, embeddable(path))
    return out


# What fpdf2's output() drops from every font it embeds (fpdf/output.py, ``drop_tables``):
# shaping is done by then (harfbuzz reads the whole file, through ``hbfont``).
NOT_EMBEDDED = ("FFTM", "GDEF", "GPOS", "GSUB", "MATH", "hdmx", "meta", "sbix", "CBDT", "CBLC",
                "EBDT", "EBLC", "EBSC", "SVG ", "CPAL", "COLR")


def embeddable(path: Path) -> bytes:
    """The font file without the tables the PDF does not embed, for fontTools to subset.

    fontTools' subsetter reads the layout tables before it drops them (to check their offset
    sizes): for the Noto fonts that was about half of a Z report's 100 ms. Without them in
    the file there is nothing to read. The glyph order and names are unchanged (the names
    come from the ``post`` table), so the glyph names fpdf2 recorded from the whole font
    still name the same glyphs."""
    font = TTFont(str(path), recalcTimestamp=False, lazy=True)
    for tag in NOT_EMBEDDED:
        if tag in font:
            del font[tag]
    # The Noto fonts carry their character map twice, as Unicode (0, 3) and as Windows (3, 1)
    # subtables with the same 2,840 entries; the subsetter decompiles every subtable. A PDF
    # draws a CID font through its own CIDToGIDMap and ToUnicode, so the Windows one is kept.
    cmap = font["cmap"]
    if cmap.getcmap(3, 1) is not None:
        cmap.tables = [t for t in cmap.tables if (t.platformID, t.platEncID) == (3, 1)]
    out = BytesIO()
    font.save(out)
    return out.getvalue()


def add_fonts(pdf: FPDF) -> None:
    """The parsed fonts into ``pdf`` without parsing them again (a Z report's PDF took 0.3 s
    more with ``add_font`` per request). What is shared is read only: the character map, the
    widths, the glyph IDs and harfbuzz's face. What a document changes is its own: the
    subset of glyphs it used, its font number, harfbuzz's font (fpdf2 sets its size on every
    shaping call, and reports are drawn in worker threads), and the fontTools font, which
    ``output()`` subsets in place (a fresh lazy one from :func:`embeddable`'s bytes: tables
    are read when the subsetter asks for them)."""
    for key, (parsed, data) in parsed_fonts().items():
        font: Any = copy.copy(parsed)
        font.i = len(pdf.fonts) + 1
        # recalcBBoxes off: subsetting keeps outlines as they are, so each glyph's bounding box
        # in the file is still right; with it on, saving decoded and re-encoded every glyph
        # drawn (a third of a statement's output() time).
        font.ttfont = TTFont(BytesIO(data), recalcTimestamp=False, recalcBBoxes=False,
                             lazy=True)
        font.subset = SubsetMap(font)
        font.missing_glyphs = []
        font.biggest_size_pt = 0
        font._hbfont = type(parsed.hbfont)(parsed.hbfont.face)
        pdf.fonts[key] = font


class ReportPdf(FPDF):
    """One report: its header on every page, then headings, facts and tables in order.

    The language is the one of the request being drawn (``i18n.current_language()``), read
    once here, so every string the caller passes should already be in it."""

    def __init__(self, *, title: str, school_name: str, period: str, timezone: str,
                 generated_at: datetime | None = None) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.lang = i18n.current_language()
        self.rtl = i18n.direction(self.lang) == "rtl"
        self.report_title, self.school_name, self.period = title, school_name, period
        self.generated = formatting.when(generated_at or datetime.now(UTC), timezone,
                                         lang=self.lang)
        self.main_font = "notoarabic" if self.rtl else "notosans"
        add_fonts(self)
        self.set_fallback_fonts(["notosans" if self.rtl else "notoarabic"], exact_match=False)
        self.fallbacks = list(self._fallback_font_ids)
        self.set_text_shaping(True)
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(True, margin=MARGIN + 6)
        self.set_lang(self.lang)
        self.set_title(f"{title}: {school_name}, {period}")
        self.set_creator("cafeteria-pos")
        self.set_draw_color(LINE_GREY)
        self.add_page()

    # --------------------------------------------------------------- page furniture
    def header(self) -> None:
        self._font(13, bold=True)
        self._text_line(self.school_name, 7, own_direction=True)
        self._font(11, bold=True)
        self._text_line(self.report_title, 6)
        self._font(BODY_SIZE)
        self._text_line(self.period, 5)
        self._text_line(_("Generated %(when)s", when=self.generated), 5)
        y = self.get_y() + 1.5
        self.line(self.l_margin, y, self.w - self.r_margin, y)
        self.set_y(y + 3)

    def _number_pages(self) -> None:
        """"Page 1 of 2" on every page, written once the count is known. (fpdf2's
        ``{nb}`` alias is replaced after layout, so a centred or right-to-left line would keep
        the alias's width around the number.)"""
        total = self.page
        self.set_auto_page_break(False)
        for number in range(1, total + 1):
            self.page = number
            # fpdf2 remembers that the font was set on *the* page, not on which one: without
            # this, a page whose stream last used another font would draw with its glyphs.
            self.current_font_is_set_on_page = False
            self.set_y(self.h - MARGIN - 2)
            self._font(8)
            self._text_line(_("Page %(page)s of %(pages)s", page=number, pages=total), 4,
                            align=Align.C)
        self.page = total

    # --------------------------------------------------------------- content
    def heading(self, text: str) -> None:
        """A section title; moved to the next page with at least a few rows after it."""
        if self.get_y() + 7 + 3 * ROW_HEIGHT > self.page_break_trigger:
            self.add_page()
        self.ln(2)
        self._font(10.5, bold=True)
        self._text_line(text, 6.5)

    def note(self, text: str) -> None:
        """A sentence under a table (what a figure means, why something is empty)."""
        self._font(8)
        self.set_x(self.l_margin)
        with self._text(rtl=self.rtl, text=text):
            self.multi_cell(0, 4, text, align=Align.R if self.rtl else Align.L,
                            new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def facts(self, pairs: Sequence[tuple[str, str]], columns: int = 2) -> None:
        """Label/value pairs in a grid (the Z report's totals, a statement's balances)."""
        width = self.epw / columns
        for start in range(0, len(pairs), columns):
            self._page_room(ROW_HEIGHT)
            y = self.get_y()
            for i, (label, value) in enumerate(pairs[start:start + columns]):
                x0 = self._start_x(i * width, width)
                self._font(BODY_SIZE)
                self._cell(x0, y, width * 0.6, label, numeric=False, words=True)
                self._font(BODY_SIZE, bold=True)
                self._cell(x0, y, width - 2, value, numeric=True)
            self.set_xy(self.l_margin, y + ROW_HEIGHT)

    def report_table(self, columns: Sequence[Column], rows: Iterable[Sequence[str]],
              total: Sequence[str] | None = None, empty: str | None = None) -> None:
        """Rows of already formatted cells; the header row is repeated on each new page,
        and ``total`` is drawn bold above a rule. A text too wide for its cell is cut with
        an ellipsis (a report must not wrap rows into one another)."""
        shares = sum(c.share for c in columns)
        widths = [self.epw * c.share / shares for c in columns]
        self._page_room(ROW_HEIGHT * 2)
        self._table_header(columns, widths)
        drawn = 0
        for row in rows:
            if self.get_y() + ROW_HEIGHT > self.page_break_trigger:
                self.add_page()
                self._table_header(columns, widths)
            self._font(BODY_SIZE)
            self._row(columns, widths, row)
            drawn += 1
        if not drawn and empty:
            self._font(BODY_SIZE)
            self._row([Column(empty)], [self.epw], [empty])
        if total is not None:
            self._page_room(ROW_HEIGHT + 1)
            y = self.get_y()
            self.line(self.l_margin, y, self.w - self.r_margin, y)
            self._font(BODY_SIZE, bold=True)
            self._row(columns, widths, total)

    def pdf_bytes(self) -> bytes:
        self._number_pages()
        self._drop_unused_fonts()
        return bytes(self.output())

    def _drop_unused_fonts(self) -> None:
        """fpdf2 subsets and embeds every font it was given, drawn with or not; each of the
        four costs a document 10-60 ms of fontTools work. An English statement without an
        Arabic name never draws with the Arabic fonts: they are taken out before ``output()``
        (no page names them, so nothing refers to them)."""
        catalog = self._resource_catalog.resources_per_page
        used = {i for (_page, kind), ids in catalog.items()
                if kind == PDFResourceType.FONT for i in ids}
        for key in [k for k, font in self.fonts.items() if font.i not in used]:
            del self.fonts[key]

    # --------------------------------------------------------------- drawing helpers
    def _table_header(self, columns: Sequence[Column], widths: Sequence[float]) -> None:
        self._font(BODY_SIZE - 0.5, bold=True)
        self._row(columns, widths, [c.title for c in columns], words=True)
        y = self.get_y()
        self.line(self.l_margin, y, self.w - self.r_margin, y)

    def _row(self, columns: Sequence[Column], widths: Sequence[float],
             cells: Sequence[str], words: bool = False) -> None:
        """Body cells are data (names, dates, amounts), each in its own direction; header
        cells (``words``) are the page's language, in its direction."""
        y, offset = self.get_y(), 0.0
        for column, width, text in zip(columns, widths, cells, strict=True):
            self._cell(self._start_x(offset, width), y, width, text, numeric=column.numeric,
                       words=words)
            offset += width
        self.set_xy(self.l_margin, y + ROW_HEIGHT)

    def _start_x(self, offset: float, width: float) -> float:
        """The left edge of a box ``offset`` mm from the line's start: from the left margin
        in a left-to-right report, from the right margin in a right-to-left one."""
        return (self.w - self.r_margin - offset - width) if self.rtl else (self.l_margin + offset)

    def _cell(self, x: float, y: float, width: float, text: str, *, numeric: bool,
              words: bool = False) -> None:
        """One line of text in a box: text at the line's start edge, amounts at its end
        edge in their own direction ("-13.50" in both languages)."""
        pad = 1.0
        align = (Align.L if self.rtl else Align.R) if numeric else (
            Align.R if self.rtl else Align.L)
        with self._text(rtl=self.rtl if words and not numeric else None, text=text):
            text = self._fit(text, width - 2 * pad)
            if self.text_shaping is None and text:
                self._plain_cell(x + pad, y, width - 2 * pad, text, align)
                return
            self.set_xy(x + pad, y)
            self.cell(width - 2 * pad, ROW_HEIGHT, text, align=align)

    def _plain_cell(self, x: float, y: float, width: float, text: str, align: Align) -> None:
        """What ``cell()`` draws for a plain text (see :meth:`_text`: no shaping, no
        fallback font) in a row: the text at the box's start or end, inside fpdf2's cell
        margin, on the baseline ``cell()`` uses. Drawn with ``text()``, which writes the same
        text object without ``cell()``'s per-call layout of fragments: that was most of a
        long statement's drawing time (871 cells, measured in docs/server.md)."""
        if align == Align.R:
            widths = self._advances()
            used = sum(widths[ord(c)] for c in text) * self.font_size_pt * 0.001
            x += width - self.c_margin - used / self.k
        else:
            x += self.c_margin
        self.text(x, y + 0.5 * ROW_HEIGHT + 0.3 * self.font_size, text)

    def _fit(self, text: str, width: float) -> str:
        # No glyph of these fonts is wider than the font size (em), so a short text fits
        # without shaping it twice (measuring runs the bidi algorithm and harfbuzz too).
        if len(text) * self.font_size <= width:
            return text
        if self.text_shaping is None:  # a plain text (see _text): its widths add up
            return self._fit_plain(text, width)
        if self.get_string_width(text) <= width:
            return text
        # The longest prefix that fits with the ellipsis, found in a few measurements
        # (a shaped text's width is not the sum of its letters').
        fits, low, high = "", 0, len(text) - 1
        while low <= high:
            mid = (low + high) // 2
            if self.get_string_width(text[:mid] + ELLIPSIS) <= width:
                fits, low = text[:mid], mid + 1
            else:
                high = mid - 1
        return fits.rstrip() + ELLIPSIS

    def _advances(self) -> Mapping[int, float]:
        """The current font's advance widths by code point, in thousandths of the size."""
        font = self.current_font
        assert isinstance(font, TTFFont)
        return cast(Mapping[int, float], font.cw)

    def _fit_plain(self, text: str, width: float) -> str:
        """:meth:`_fit` for a text drawn without shaping, from the font's advance widths
        (what fpdf2's own measurement sums for it, with its per-call set-up once per cell
        instead of once per letter tried: a statement's item lists are cut here)."""
        widths = self._advances()
        scale = self.font_size_pt * 0.001 / self.k
        if sum(widths[ord(c)] for c in text) * scale <= width:
            return text
        room = width - widths[ord(ELLIPSIS)] * scale
        used = 0.0
        for i, c in enumerate(text):
            used += widths[ord(c)] * scale
            if used > room:
                return text[:i].rstrip() + ELLIPSIS
        return text

    def _text_line(self, text: str, height: float, align: Align | None = None,
                   own_direction: bool = False) -> None:
        """A line across the page, at its start edge; ``own_direction`` for data (a name)
        that keeps its own direction, as the console's ``<bdi>`` does."""
        with self._text(rtl=None if own_direction else self.rtl, text=text):
            self.set_x(self.l_margin)
            self.cell(0, height, self._fit(text, self.epw),
                      align=align or (Align.R if self.rtl else Align.L),
                      new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def _font(self, size: float, bold: bool = False) -> None:
        self.set_font(self.main_font, "B" if bold else "", size)

    @contextmanager
    def _text(self, rtl: bool | None, text: str) -> Iterator[None]:
        """Paragraph direction for the text drawn inside: right to left, left to right, or
        (None) the text's own, from its first strong letter (how amounts and codes are drawn).

        A left-to-right text of plain Latin letters, digits and punctuation is drawn without
        the shaping engine: for it the bidi algorithm and harfbuzz change nothing but the
        kerning, and they cost about 0.6 ms a cell (a statement of 165 movements took 600 ms
        to draw, most of it there; measured in docs/server.md). fpdf2 also looks every
        character up in the fallback fonts, one fragment per fallback letter, unless there
        are none: such a text is drawn in whichever of the two fonts has all its characters
        (the Latin one, in an Arabic report), without fallbacks, and the font is put back."""
        family, style, size = self.font_family, self.font_style, self.font_size_pt
        # fpdf2 switches to a fallback font inside the text object of the cell that needs it
        # and then believes the page is still on the main font: the next cell in the main
        # font was written with the fallback's glyph numbers (an Arabic report's amounts after
        # a Latin name came out as Arabic letters). Every text states its font again.
        self.current_font_is_set_on_page = False
        plain_in = self._plain_font(text) if rtl is not True else None
        if plain_in is not None:
            self.set_text_shaping(False)
            self._fallback_font_ids = []
            if plain_in != family:
                self.set_font(plain_in, style, size)
        else:
            self._fallback_font_ids = self.fallbacks
            self.set_text_shaping(True, direction=None if rtl is None else (
                "rtl" if rtl else "ltr"))
        try:
            yield
        finally:
            if self.font_family != family:
                self.set_font(family, style, size)

    def _plain_font(self, text: str) -> str | None:
        """The family, of the current one and Noto Sans, that has every character of a
        :data:`PLAIN` text (None: not plain, or neither has them all)."""
        if not PLAIN.fullmatch(text):
            return None
        for family in dict.fromkeys((self.font_family, "notosans")):
            font = self.fonts.get(family + self.font_style)
            if isinstance(font, TTFFont) and all(ord(c) in font.cmap for c in text):
                return family
        return None

    def _page_room(self, height: float) -> None:
        if self.get_y() + height > self.page_break_trigger:
            self.add_page()
