"""Lists that sort by their columns: ``?sort=<column>&dir=asc|desc``, whitelisted.

Each list names the columns it may sort by (a key in the URL -> a SQL expression); a key not
on the list, or a ``dir`` other than asc/desc, is ignored and the list keeps its default
order. Ignoring rather than answering 400 keeps old bookmarks and hand-edited links working;
nothing from the URL ever reaches SQL as text. Ties are broken by the list's own key so
paging never shows a row twice.

Templates draw the headers with ``sort_th`` (templates/sort_macros.html), which marks the
sorted column with ``aria-sort`` and links each header to its other direction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from .render import query_with


@dataclass(frozen=True, slots=True)
class Sorting:
    key: str
    descending: bool
    links: Mapping[str, str]      # column key -> query string that sorts by it

    def href(self, key: str) -> str:
        return "?" + self.links[key]

    def aria(self, key: str) -> str:
        if key != self.key:
            return "none"
        return "descending" if self.descending else "ascending"


def sorting(request: web.Request, allowed: Sequence[str], default: str, *,
            descending: bool = False) -> Sorting:
    """The order asked for, or ``default`` (``descending`` its direction)."""
    key = request.query.get("sort", "")
    direction = request.query.get("dir", "")
    if key in allowed and direction in ("asc", "desc"):
        chosen, desc = key, direction == "desc"
    elif key in allowed:
        chosen, desc = key, False
    else:
        chosen, desc = default, descending
    # The sorted column's header flips its direction; any other opens ascending.
    links = {k: query_with(request, sort=k, page=None,
                           dir="asc" if k != chosen or desc else "desc") for k in allowed}
    return Sorting(chosen, desc, links)


def ordered(stmt: sa.Select[Any], order: Sorting, columns: Mapping[str, Any],
            *tiebreak: Any) -> sa.Select[Any]:
    """``stmt`` ordered by the chosen column, then ``tiebreak``. A nullable column puts its
    empty cells last in both directions and on both databases; a NOT NULL one gets no NULLS
    clause, which PostgreSQL would otherwise have to satisfy by sorting instead of reading an
    index in order (the default orders are index orders)."""
    column = columns[order.key]
    direction = column.desc() if order.descending else column.asc()
    if getattr(column, "nullable", False):
        direction = direction.nulls_last()
    return stmt.order_by(None).order_by(direction, *tiebreak)
