"""PDF reports share the fonts parsed once per process (reports/pdf.py ``add_fonts``) without
sharing what a document changes: two documents drawn at the same time in worker threads
(as report_pdfs.py draws them) each embed the glyphs they used, and the parsed fonts are
left whole for the next document."""

from __future__ import annotations

import asyncio
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
