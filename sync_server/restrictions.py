"""What a wallet may not buy (spec v1.1): blocked categories, blocked products, allergens.

Each blocked item is a ``wallet_restrictions`` row that lives from ``since`` until it is lifted
(``until``); a change closes the rows that go and opens rows for what is new, never editing or
deleting one. That history is what lets the server flag ``restricted_item`` only on a sale
made *after* the restriction was set (a till that sold on an older snapshot), and lets the
exceptions queue say which item met which restriction.

A change bumps the wallet's ``version`` through the school change counter, like every change
to a row terminals mirror (:mod:`sync_server.records`), so tills get it with the next delta.

Matching rules, the same on the till: a product is blocked by its ``product_id``, by its
``category`` (the category text exactly as the catalog spells it), or by an allergen it
carries (allergens are stored lower-case and trimmed, and compared that way).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow
from shared.protocol import text_problem

from .i18n import _
from .ledger import versions
from .ledger.locks import hold_wallet
from .storage.bulk import chunks
from .storage.schema import products, wallet_restrictions, wallets

# The kinds a row may have, and the snapshot key each is sent under.
KINDS = ("category", "product", "allergen")
SNAPSHOT_KEYS = {"category": "blocked_categories", "product": "blocked_products",
                 "allergen": "allergens"}
MAX_VALUE = 100        # an allergen or a category name; product IDs are at most 64
MAX_PER_KIND = 100     # a typo guard: no real student has a hundred restrictions of a kind


class RestrictionError(ValueError):
    """A restriction that cannot be set, in words for the person who typed it."""


@dataclass(frozen=True, slots=True)
class Wanted:
    """The full set of restrictions a wallet should have after a change."""

    categories: frozenset[str] = frozenset()
    products: frozenset[str] = frozenset()
    allergens: frozenset[str] = frozenset()

    def rows(self) -> set[tuple[str, str]]:
        return ({("category", v) for v in self.categories}
                | {("product", v) for v in self.products}
                | {("allergen", v) for v in self.allergens})


@dataclass(frozen=True, slots=True)
class Change:
    """What a :func:`set_for_wallet` call opened and lifted, as (kind, value) pairs."""

    added: tuple[tuple[str, str], ...] = ()
    lifted: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.lifted)

    def describe(self) -> dict[str, list[str]]:
        """For the audit log: ``{"added": ["allergen:peanut"], "lifted": [...]}``."""
        return {"added": [f"{k}:{v}" for k, v in self.added],
                "lifted": [f"{k}:{v}" for k, v in self.lifted]}


@dataclass(frozen=True, slots=True)
class Span:
    """One restriction row as the push judge reads it: times as epoch seconds (cheap)."""

    kind: str
    value: str
    since: float
    until: float | None

    def active_at(self, moment: float) -> bool:
        return self.since <= moment and (self.until is None or moment < self.until)


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """What matching needs of a product: its category and its allergens."""

    category: str
    allergens: frozenset[str] = field(default_factory=frozenset)


# ------------------------------------------------------------------ text rules


def clean_allergen(raw: str) -> str:
    """Lower-case, trimmed, inner white space collapsed to one space (``" Tree  Nuts"`` ->
    ``"tree nuts"``), so the till and the server compare the same text."""
    return " ".join(unicodedata.normalize("NFC", raw).split()).lower()


def value_problem(value: str, what: str, max_len: int = MAX_VALUE) -> str | None:
    """Why ``value`` cannot be a restriction or allergen name, or None."""
    if not value:
        return _("%(what)s is empty", what=_(what))
    if len(value) > max_len:
        return _("%(what)s %(value)r… is longer than %(most)d characters", what=_(what),
                 value=value[:20], most=max_len)
    problem = text_problem(value)
    if problem:
        return f"{what} {problem}"
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value):
        return _("%(what)s %(value)r has invisible or control characters", what=_(what),
                 value=value[:40])
    return None


# A typed list may be separated the Latin or the Arabic way (U+060C ARABIC COMMA, U+061B
# ARABIC SEMICOLON): an Arabic keyboard types those.
LIST_SEPARATORS = ",;\n\u060c\u061b"


def parse_allergens(text: str, separators: str = LIST_SEPARATORS) -> list[str]:
    """A typed list (``"Peanut, sesame"``, ``"فول سوداني، حليب"``) as clean, distinct, sorted
    allergen names; RestrictionError naming the first bad one."""
    for sep in separators[1:]:
        text = text.replace(sep, separators[0])
    out = {clean_allergen(part) for part in text.split(separators[0])} - {""}
    for value in sorted(out):
        problem = value_problem(value, "allergen")
        if problem:
            raise RestrictionError(problem)
    if len(out) > MAX_PER_KIND:
        raise RestrictionError(_("more than %(most)d allergens", most=MAX_PER_KIND))
    return sorted(out)


# ------------------------------------------------------------------ reading


async def active(conn: AsyncConnection, school_id: str,
                 wallet_ids: Iterable[str]) -> dict[str, dict[str, list[str]]]:
    """The current restrictions of these wallets, as the snapshot sends them (sorted lists,
    every key present), read with one grouped query per 1,000 wallets."""
    out: dict[str, dict[str, list[str]]] = {}
    for chunk in chunks(set(wallet_ids)):
        rows = await conn.execute(
            sa.select(wallet_restrictions.c.wallet_id, wallet_restrictions.c.kind,
                      wallet_restrictions.c.value)
            .where(wallet_restrictions.c.school_id == school_id,
                   wallet_restrictions.c.wallet_id.in_(chunk),
                   wallet_restrictions.c.until.is_(None))
            .order_by(wallet_restrictions.c.wallet_id, wallet_restrictions.c.kind,
                      wallet_restrictions.c.value))
        for r in rows:
            out.setdefault(r.wallet_id, empty())[SNAPSHOT_KEYS[r.kind]].append(r.value)
    return out


def empty() -> dict[str, list[str]]:
    """No restriction: every key, each an empty list (spec v1.1: lists, never null)."""
    return {key: [] for key in SNAPSHOT_KEYS.values()}


async def spans(conn: AsyncConnection, school_id: str,
                wallet_ids: Iterable[str]) -> dict[str, list[Span]]:
    """Every restriction these wallets ever had (lifted ones too), one query per 1,000
    wallets: a sale is judged against what was in force at its own ``created_at``."""
    out: dict[str, list[Span]] = {}
    for chunk in chunks(set(wallet_ids)):
        rows = await conn.execute(
            sa.select(wallet_restrictions.c.wallet_id, wallet_restrictions.c.kind,
                      wallet_restrictions.c.value, wallet_restrictions.c.since,
                      wallet_restrictions.c.until)
            .where(wallet_restrictions.c.school_id == school_id,
                   wallet_restrictions.c.wallet_id.in_(chunk)))
        for r in rows:
            out.setdefault(r.wallet_id, []).append(Span(
                r.kind, r.value, r.since.timestamp(),
                r.until.timestamp() if r.until is not None else None))
    return out


async def catalog(conn: AsyncConnection, school_id: str,
                  product_ids: Iterable[str]) -> dict[str, CatalogItem]:
    """Category and allergens of these products of this school."""
    out: dict[str, CatalogItem] = {}
    for chunk in chunks(set(product_ids)):
        rows = await conn.execute(
            sa.select(products.c.product_id, products.c.category, products.c.allergens)
            .where(products.c.school_id == school_id, products.c.product_id.in_(chunk)))
        out.update({r.product_id: CatalogItem(r.category, frozenset(r.allergens or ()))
                    for r in rows})
    return out


# ------------------------------------------------------------------ matching


@dataclass(frozen=True, slots=True)
class Hit:
    """A sale line that met a restriction: the line's product, and which restriction."""

    product_id: str
    name: str
    kind: str
    value: str


def blocked_lines(lines: Sequence[Mapping[str, Any]], in_force: Sequence[Span],
                  items: Mapping[str, CatalogItem]) -> list[Hit]:
    """The lines that a restriction in ``in_force`` blocks, each with the first such
    restriction (product, then category, then allergens in name order)."""
    if not in_force:
        return []
    blocked = {(s.kind, s.value) for s in in_force}
    hits = []
    for line in lines:
        pid = str(line["product_id"])
        item = items.get(pid)
        found: tuple[str, str] | None = None
        if ("product", pid) in blocked:
            found = ("product", pid)
        elif item is not None and ("category", item.category) in blocked:
            found = ("category", item.category)
        elif item is not None:
            allergen = next((a for a in sorted(item.allergens) if ("allergen", a) in blocked),
                            None)
            if allergen is not None:
                found = ("allergen", allergen)
        if found is not None:
            hits.append(Hit(pid, str(line.get("name") or pid), *found))
    return hits


def in_force(all_spans: Sequence[Span], moment: float) -> list[Span]:
    return [s for s in all_spans if s.active_at(moment)]


# ------------------------------------------------------------------ changing


async def school_products(conn: AsyncConnection, school_id: str) -> list[Any]:
    """The school's products (ID, name, category), by till position: the choices a form or a
    roster cell picks from."""
    return list((await conn.execute(
        sa.select(products.c.product_id, products.c.name, products.c.category,
                  products.c.active)
        .where(products.c.school_id == school_id)
        .order_by(products.c.position.is_(None), products.c.position, products.c.name,
                  products.c.product_id))).all())


async def set_for_wallet(conn: AsyncConnection, school_id: str, wallet_id: str,
                         wanted: Wanted, *, actor: str | None,
                         at: datetime | None = None) -> Change:
    """Make ``wanted`` the wallet's restrictions: lift (close) the rows that are no longer
    wanted, open rows for the new ones, and bump the wallet's version if anything changed.

    Products must be this school's (by ID); categories and allergens are checked as text.
    RestrictionError (nothing written) for anything else. Runs in the caller's transaction.
    """
    await check(conn, school_id, wanted)
    # Wallet before school: the lock order every sales batch uses.
    if not await hold_wallet(conn, school_id, wallet_id):
        raise RestrictionError(_("no such wallet in this school"))
    current = {(r.kind, r.value): r.restriction_id for r in await conn.execute(
        sa.select(wallet_restrictions.c.restriction_id, wallet_restrictions.c.kind,
                  wallet_restrictions.c.value)
        .where(wallet_restrictions.c.school_id == school_id,
               wallet_restrictions.c.wallet_id == wallet_id,
               wallet_restrictions.c.until.is_(None)))}
    target = wanted.rows()
    lifted = sorted(set(current) - target)
    added = sorted(target - set(current))
    if not (lifted or added):
        return Change()
    now = at or utcnow()
    if lifted:
        await conn.execute(
            sa.update(wallet_restrictions)
            .where(wallet_restrictions.c.restriction_id.in_([current[k] for k in lifted]))
            .values(until=now))
    if added:
        await conn.execute(sa.insert(wallet_restrictions), [
            {"school_id": school_id, "wallet_id": wallet_id, "kind": kind, "value": value,
             "since": now, "until": None, "set_by": actor} for kind, value in added])
    version = await versions.bump(conn, school_id)
    await conn.execute(sa.update(wallets)
                       .where(wallets.c.school_id == school_id, wallets.c.wallet_id == wallet_id)
                       .values(version=version, updated_at=now))
    return Change(tuple(added), tuple(lifted))


async def check(conn: AsyncConnection, school_id: str, wanted: Wanted) -> None:
    """RestrictionError naming the first thing wrong with ``wanted``."""
    for kind, values in (("category", wanted.categories), ("product", wanted.products),
                         ("allergen", wanted.allergens)):
        if len(values) > MAX_PER_KIND:
            raise RestrictionError(_("more than %(most)d blocked %(kind)s entries",
                                     most=MAX_PER_KIND, kind=_(kind)))
        for value in sorted(values):
            problem = value_problem(value, kind, 64 if kind == "product" else MAX_VALUE)
            if problem:
                raise RestrictionError(problem)
    for value in wanted.allergens:
        if value != clean_allergen(value):
            raise RestrictionError(_("allergen %(value)r must be lower-case and trimmed",
                                     value=value))
    if wanted.products:
        known: set[str] = set()
        for chunk in chunks(set(wanted.products)):
            known.update(r[0] for r in await conn.execute(
                sa.select(products.c.product_id)
                .where(products.c.school_id == school_id, products.c.product_id.in_(chunk))))
        unknown = sorted(wanted.products - known)
        if unknown:
            raise RestrictionError(_("no product %(name)r in this school", name=unknown[0]))


async def history(conn: AsyncConnection, school_id: str, wallet_id: str,
                  limit: int = 50) -> list[Any]:
    """The wallet's restriction rows, newest first (the wallet page's history)."""
    return list((await conn.execute(
        sa.select(wallet_restrictions)
        .where(wallet_restrictions.c.school_id == school_id,
               wallet_restrictions.c.wallet_id == wallet_id)
        .order_by(wallet_restrictions.c.since.desc(),
                  wallet_restrictions.c.restriction_id.desc())
        .limit(limit))).all())
