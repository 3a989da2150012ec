"""PDF reports share the fonts parsed once per process (reports/pdf.py ``add_fonts``) without
sharing what a document changes: two documents drawn at the same time in worker threads
(as report_pdfs.py draws them) each embed the glyphs they used, and the parsed fonts are
left whole for the next document."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess

import pytest

import sync_server.app  # noqa: F401  (the admin package first: pdf.py imports its formatting)
from sync_server.reports.pdf import Column, ReportPdf, parsed_fonts


def draw(name: str, rows: int) -> bytes:
    pdf = ReportPdf(title="Z report", school_name="School", period="2026-06-11",
                    timezone="Asia/Riyadh")
    pdf.report_table([Column("Name", 2), Column("Amount", 1, numeric=True)],
                     [[f"{name} {i}", f"{i}.50"] for i in range(rows)])
    return pdf.pdf_bytes()


pytestmark = pytest.mark.skipif(not shutil.which("pdftotext"),
                                reason="needs poppler's pdftotext: apt-get install poppler-utils")


def text_of(blob: bytes) -> str:
    """The words, without the direction marks pdftotext puts around runs."""
    out = subprocess.run(["pdftotext", "-", "-"], input=blob, capture_output=True,
                         check=True).stdout.decode()
    return "".join(ch for ch in out if ch not in "\u202a\u202b\u202c")


async def test_documents_in_threads_keep_their_own_glyphs() -> None:
    glyphs_before = {k: len(f.ttfont.getGlyphOrder()) for k, (f, _) in parsed_fonts().items()}
    latin, arabic = await asyncio.gather(*(
        asyncio.to_thread(draw, name, 60) for name in ("Zebra", "عمر")))
    assert "Zebra 59" in text_of(latin)
    assert "عمر 59" in text_of(arabic)  # joined letters came out as the same text
    again = draw("Quokka", 3)
    assert "Quokka 2" in text_of(again)
    after = {k: len(f.ttfont.getGlyphOrder()) for k, (f, _) in parsed_fonts().items()}
    assert after == glyphs_before  # output() subset its own copy, not the shared font


def test_embedded_copy_keeps_the_glyph_order() -> None:
    """fpdf2 names the glyphs a document used from the whole font; fontTools subsets the copy
    without layout tables: the names must still point at the same glyphs."""
    from io import BytesIO

    from fontTools.ttLib import TTFont

    from sync_server.reports.pdf import NOT_EMBEDDED, embeddable, font_paths
    for path in font_paths().values():
        whole, copy = TTFont(str(path), lazy=True), TTFont(BytesIO(embeddable(path)), lazy=True)
        assert copy.getGlyphOrder() == whole.getGlyphOrder()
        assert copy["cmap"].getBestCmap() == whole["cmap"].getBestCmap()
        assert "GSUB" in whole and not any(tag in copy for tag in NOT_EMBEDDED)


def test_plain_and_shaped_cells_and_fonts_no_page_uses() -> None:
    """Plain Latin cells skip the shaping engine and, when the font has every letter, the
    fallback lookup; anything else (Arabic, a combining accent, a letter neither font has)
    still goes through them, and the document is still made."""
    names = ["Zoë Müller", "Nguyễn Thị Ánh", "Иван Петров", "Omar عمر", "Jose\u0301",
             "王小明", "-13.50"]
    pdf = ReportPdf(title="Statement", school_name="School", period="2026-06",
                    timezone="Asia/Riyadh")
    pdf.report_table([Column("Name", 2), Column("Amount", 1, numeric=True)],
                     [[name, f"{i}.25"] for i, name in enumerate(names)])
    text = text_of(pdf.pdf_bytes())
    for name in ("Zoë Müller", "Nguyễn Thị Ánh", "Иван Петров", "عمر", "-13.50", "6.25"):
        assert name in text
    assert "Jose" in text
    latin_only = draw("Zebra", 3)
    assert b"+NotoSansArabic" not in latin_only  # never drawn with, so not embedded
    assert re.search(rb"\+NotoSans[^A]", latin_only)


def test_latin_cells_in_an_arabic_report_use_the_latin_fallback() -> None:
    from sync_server import i18n
    with i18n.language("ar"):
        pdf = ReportPdf(title="كشف", school_name="مدرسة", period="2026-06",
                        timezone="Asia/Riyadh")
        pdf.report_table([Column("الاسم", 2), Column("المبلغ", 1, numeric=True)],
                         [["Zoë Müller", "-13.50"], ["عمر", "1,234.56"]])
        blob = pdf.pdf_bytes()
    text = text_of(blob)
    # The amounts after a Latin name are drawn in the Arabic font (which has the digits):
    # they once came out as Arabic letters, written with the Latin font's glyph numbers.
    assert "Zoë Müller" in text and "-13.50" in text and "1,234.56" in text
    assert "عمر" in text and "المبلغ" in text
    assert b"+NotoSansArabic" in blob and re.search(rb"\+NotoSans[^A]", blob)
