"""The order of a school's products on the till (``products.position``, spec v1.1).

The position is the button's place and its hotkey, which cashiers learn by heart: a new product
goes after the last one and never moves another; only an admin's reorder moves products, and it
renumbers just the rows whose place changed (each gets a new version, so the delta carries
exactly those). Positions are whole numbers from 1; a product without one (never the case after
migration 0007) sorts last.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .ledger import versions
from .storage.schema import products


class PositionError(ValueError):
    """A move that cannot be made, in words for the admin."""


def ordered(school_id: str) -> sa.Select[Any]:
    """The school's products in till order (unnumbered ones last, by category and name)."""
    return (sa.select(products)
            .where(products.c.school_id == school_id)
            .order_by(products.c.position.is_(None), products.c.position, products.c.category,
                      products.c.name, products.c.product_id))


async def next_position(conn: AsyncConnection, school_id: str) -> int:
    """One past the school's highest position. Called after :func:`versions.bump`, whose lock
    on the school row makes two concurrent creations take turns (no shared number)."""
    top = (await conn.execute(sa.select(sa.func.max(products.c.position))
                              .where(products.c.school_id == school_id))).scalar_one_or_none()
    return int(top or 0) + 1


async def move(conn: AsyncConnection, school_id: str, product_id: str, *,
               to: int | None = None, step: int | None = None) -> list[tuple[str, int, int]]:
    """Move a product to place ``to`` (1 = first) or ``step`` places (-1 up, +1 down).

    Returns ``(product_id, old, new)`` for every row renumbered (empty when nothing moved).
    Places are taken in the current order, so a list with gaps or unnumbered products is
    numbered 1..n from the first reorder on; after that a move touches only the rows between
    the old and the new place.
    """
    # The school row's lock first (the version bump), so two admins reordering at once take
    # turns and the second reads the first one's order, never a stale one (no shared number).
    # A move that changes nothing spends a version: an empty delta, harmless.
    version = await versions.bump(conn, school_id)
    rows = list((await conn.execute(
        ordered(school_id).with_only_columns(products.c.product_id, products.c.position)
    )).all())
    ids = [r.product_id for r in rows]
    if product_id not in ids:
        raise PositionError("no such product in this school")
    old_index = ids.index(product_id)
    if (to is None) == (step is None):
        raise PositionError("say where to move the product")
    new_index = (to - 1) if to is not None else old_index + (step or 0)
    if to is not None and not 1 <= to <= len(ids):
        raise PositionError(f"the position must be between 1 and {len(ids)}")
    new_index = max(0, min(new_index, len(ids) - 1))
    ids.insert(new_index, ids.pop(old_index))
    before = {r.product_id: r.position for r in rows}
    moved = [(pid, before[pid], place) for place, pid in enumerate(ids, start=1)
             if before[pid] != place]
    if not moved:
        return []
    for pid, _old, place in moved:
        await conn.execute(sa.update(products)
                           .where(products.c.school_id == school_id,
                                  products.c.product_id == pid)
                           .values(position=place, version=version))
    return [(pid, int(old) if old is not None else 0, new) for pid, old, new in moved]
