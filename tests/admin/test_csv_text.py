"""Which uploaded bytes the roster reads, and as what (``sync_server/admin/csv_text.py``)."""

from __future__ import annotations

import pytest

from sync_server.admin.csv_text import EncodingRefused, decode_upload, looks_arabic

ARABIC = "student_number,name\nAR-1,سارة العتيبي\nAR-2,عمر بن الخطّاب\n"


def test_utf8_with_and_without_bom() -> None:
    assert decode_upload(ARABIC.encode()) == (ARABIC, "UTF-8")
    assert decode_upload(b"\xef\xbb\xbf" + ARABIC.encode()) == (ARABIC, "UTF-8")
    assert decode_upload(b"student_number,name\nS-1,Sara\n")[1] == "UTF-8"  # plain ASCII


def test_arabic_windows_1256_is_read_as_arabic() -> None:
    blob = ARABIC.encode("cp1256")
    with pytest.raises(UnicodeDecodeError):
        blob.decode("utf-8")
    assert decode_upload(blob) == (ARABIC, "Windows-1256 (Arabic)")
    # Latin names beside Arabic ones, and the French letters cp1256 also has, still pass.
    mixed = "student_number,name\n1,سارة العتيبي\n2,Sara Dupré\n3,ليلى\n"
    assert decode_upload(mixed.encode("cp1256"))[0] == mixed


@pytest.mark.parametrize("text, codec", [
    ("student_number,name\n1,José Müller\n2,Zoë\n", "latin-1"),
    ("student_number,name\n1,Muñoz\n", "cp1252"),     # ñ is an Arabic mark in cp1256
    ("student_number,name\n1,Иван Петров\n", "cp1251"),
    ("student_number,name\n1,Sara\n", "utf-16"),
])
def test_other_code_pages_are_refused_with_how_to_save(text: str, codec: str) -> None:
    with pytest.raises(EncodingRefused, match="CSV UTF-8"):
        decode_upload(text.encode(codec))


def test_a_bom_with_bytes_that_are_not_utf8_is_refused() -> None:
    with pytest.raises(EncodingRefused, match="not valid UTF-8"):
        decode_upload(b"\xef\xbb\xbf" + "سارة".encode("cp1256"))


def test_the_arabic_rule() -> None:
    assert looks_arabic("سارة")
    assert not looks_arabic("plain ascii")
    assert not looks_arabic("\u064b\u064c")  # marks only, no letter
    assert not looks_arabic("س" + "é" * 5)   # Arabic is not most of the non-ASCII text
