"""How a typed name meets a stored one: Arabic spelling variants and Latin case fold together.

Cashiers type names quickly and by ear. In Arabic the same name is written with or without
hamza on the alef (أحمد / احمد / إحمد), with tā' marbūṭa or hā' at the end (سارة / ساره), with
alif maqṣūra or yā' (منى / مني), with or without short-vowel marks and tatweel. A plain
``LIKE`` finds none of those, and a cashier who cannot find the student either sends the
child away or picks a near-miss row: the wrong wallet. Both sides are folded the same way:
the stored name by a SQLite function registered on the connection, the typed text here.
"""

from __future__ import annotations

import sqlite3
import unicodedata

_ARABIC = str.maketrans({
    "أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا",  # alef with hamza/madda/wasla → bare alef
    "ة": "ه",                              # tā' marbūṭa → hā'
    "ى": "ي",                              # alif maqṣūra → yā'
    "ؤ": "و", "ئ": "ي",                     # hamza seats
    "ـ": None,                              # tatweel (kashida), only stretches the line
})


def fold(text: str) -> str:
    """Case-folded, marks removed (Arabic harakat and Latin accents), Arabic variants joined."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", bare.translate(_ARABIC)).casefold()


def register(conn: sqlite3.Connection) -> None:
    """Make ``fold_name(text)`` available in SQL on this connection."""
    conn.create_function("fold_name", 1, lambda v: None if v is None else fold(str(v)),
                         deterministic=True)
