"""What a student may not buy (spec v1.1), checked on the till, offline too.

A wallet's restrictions come with the snapshot: blocked categories, blocked products and the
student's allergens. A product is blocked by its id, by its category (spelt exactly as the
catalog spells it) or by an allergen it carries that the student has (lower-case, trimmed).
The order of the checks is the server's (``sync_server/restrictions.py``): product, category,
then allergens in name order, so the till and the exceptions queue name the same reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from terminal.selling.rules import Refusal, refusal


def _clean(values: Iterable[object]) -> tuple[str, ...]:
    return tuple(str(v) for v in values if str(v).strip())


def clean_allergen(raw: str) -> str:
    return " ".join(raw.split()).lower()


@dataclass(frozen=True, slots=True)
class Restrictions:
    blocked_categories: tuple[str, ...] = ()
    blocked_products: tuple[str, ...] = ()
    allergens: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.blocked_categories or self.blocked_products or self.allergens)

    @classmethod
    def from_json(cls, text: str | None) -> Restrictions:
        """The stored form; empty or unreadable text means nothing is restricted (a row
        written before the terminal knew about restrictions)."""
        if not text:
            return cls()
        try:
            raw = json.loads(text)
        except ValueError:
            return cls()
        if not isinstance(raw, dict):
            return cls()
        return cls(blocked_categories=_clean(raw.get("blocked_categories") or ()),
                   blocked_products=_clean(raw.get("blocked_products") or ()),
                   allergens=tuple(sorted({clean_allergen(a) for a in
                                           _clean(raw.get("allergens") or ())})))

    def to_json(self) -> str:
        return json.dumps({"blocked_categories": list(self.blocked_categories),
                           "blocked_products": list(self.blocked_products),
                           "allergens": list(self.allergens)},
                          ensure_ascii=False, separators=(",", ":"))


NO_RESTRICTIONS = Restrictions()


@dataclass(frozen=True, slots=True)
class Item:
    """The part of a product the restrictions look at."""

    product_id: str
    name: str
    category: str
    allergens: tuple[str, ...]


def item_refusal(item: Item, restrictions: Restrictions) -> Refusal | None:
    """``restricted_item`` naming the item and the first restriction that blocks it, or
    ``None`` when the student may have it."""
    if not restrictions:
        return None
    if item.product_id in restrictions.blocked_products:
        return refusal("restricted_product", item=item.name)
    if item.category in restrictions.blocked_categories:
        return refusal("restricted_category", item=item.name, category=item.category)
    student = set(restrictions.allergens)
    for allergen in sorted(clean_allergen(a) for a in item.allergens):
        if allergen in student:
            return refusal("restricted_allergen", item=item.name, allergen=allergen)
    return None


def first_refusal(items: Iterable[Item], restrictions: Restrictions) -> Refusal | None:
    """The refusal of the first blocked item of a cart (in the order the cashier added them)."""
    for item in items:
        found = item_refusal(item, restrictions)
        if found is not None:
            return found
    return None
