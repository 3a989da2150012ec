"""Reading an uploaded CSV's bytes as text: UTF-8 (with or without Excel's BOM) or Arabic
Windows (Windows-1256), and nothing else.

Excel on an Arabic Windows saves "CSV (Comma delimited)" in the Windows code page, cp1256; only
"CSV UTF-8" gives UTF-8 (with a BOM). A school office will upload both, so both are read:

1. A UTF-8 BOM, or bytes that are valid UTF-8: UTF-8. Valid UTF-8 is a strong signal (text in
   a legacy code page with any byte above 0x7F is almost never valid UTF-8 by chance).
2. Otherwise the bytes are decoded as cp1256, and that reading is kept only when it looks like
   Arabic text: it has Arabic letters and at least 80% of its non-ASCII characters are in the
   Arabic block (or the direction marks and joiners Arabic text uses). Arabic names in cp1256
   decode to exactly that. Text in another code page (Latin-1 "José", Cyrillic, a UTF-16
   "Unicode text" file) fails the test and is refused with a message saying how to save as
   "CSV UTF-8", never imported as mojibake.

We chose a rule over ``charset-normalizer``: only these two encodings are wanted, the rule is
a few lines that can be read and tested, and a guesser's answer for a short file of names can
change between its releases.
"""

from __future__ import annotations

from ..i18n import N_, _

UTF8_BOM = b"\xef\xbb\xbf"
SAVE_AS = N_("save it from Excel with File > Save As > 'CSV UTF-8 (Comma delimited)' "
              "and import that file")
ARABIC_SHARE = 0.8
_ARABIC_MARKS = frozenset("\u200c\u200d\u200e\u200f")  # ZWNJ, ZWJ, LRM, RLM (all in cp1256)


class EncodingRefused(ValueError):
    """The bytes are neither UTF-8 nor Arabic Windows text; the message says what to do."""


def decode_upload(blob: bytes) -> tuple[str, str]:
    """``(text, encoding name for people)``; EncodingRefused when neither rule fits."""
    if blob.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise EncodingRefused(_("the file is UTF-16 ('Unicode text'), not CSV:") + " "
                              + _(SAVE_AS))
    if blob.startswith(UTF8_BOM):
        try:
            return blob[len(UTF8_BOM):].decode("utf-8"), "UTF-8"
        except UnicodeDecodeError:
            raise EncodingRefused(_("the file starts as UTF-8 but is not valid UTF-8:") + " "
                                  + _(SAVE_AS)) from None
    try:
        return blob.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    text = blob.decode("cp1256")  # every byte has a meaning in cp1256: this cannot fail
    if looks_arabic(text):
        return text, "Windows-1256 (Arabic)"
    raise EncodingRefused(_("the file is not UTF-8 text, nor Arabic Windows (Windows-1256) "
                            "text:") + " " + _(SAVE_AS))


def looks_arabic(text: str) -> bool:
    """Has Arabic letters, and they (with Arabic marks) are most of its non-ASCII text."""
    other = [ch for ch in text if not ch.isascii()]
    arabic = sum(1 for ch in other if "\u0600" <= ch <= "\u06ff" or ch in _ARABIC_MARKS)
    letters = sum(1 for ch in other if "\u0621" <= ch <= "\u064a")
    return letters > 0 and arabic >= ARABIC_SHARE * len(other)
