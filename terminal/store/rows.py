"""Reading rows by column name, so a column added by a migration can never shift a field.

The store used to build its dataclasses from tuples by position; one ``SELECT`` listing its
columns in a different order than the dataclass fields would have put a balance into a daily
limit without any error. Here every query returns :class:`sqlite3.Row` (on its own cursor: the
connection's ``row_factory`` stays as sqlite-utils expects it) and :func:`build` fills each
field from the column of the same name.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")

Params = Sequence[Any] | Mapping[str, Any]


def fetch_one(conn: sqlite3.Connection, sql: str, params: Params = ()) -> sqlite3.Row | None:
    cursor = conn.cursor()
    cursor.row_factory = sqlite3.Row
    row: sqlite3.Row | None = cursor.execute(sql, params).fetchone()
    return row


def fetch_all(conn: sqlite3.Connection, sql: str, params: Params = ()) -> list[sqlite3.Row]:
    cursor = conn.cursor()
    cursor.row_factory = sqlite3.Row
    return list(cursor.execute(sql, params).fetchall())


def build(cls: type[T], row: sqlite3.Row,
          convert: Mapping[str, Callable[[Any], Any]] | None = None) -> T:
    """``cls(**{field: row[field]})`` for every dataclass field, through ``convert[field]``
    where given (SQLite has no booleans or lists). A field missing from the row is an error
    (``IndexError``), never a silent default."""
    convert = convert or {}
    values = {}
    for f in fields(cls):  # type: ignore[arg-type]
        value = row[f.name]
        values[f.name] = convert[f.name](value) if f.name in convert else value
    return cls(**values)
