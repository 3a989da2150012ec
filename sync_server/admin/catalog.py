"""Products and cashiers: create, edit, deactivate; cashier PINs set or reset.

Through :mod:`sync_server.records` (price history, PIN hashing, version bumps). A PIN never
enters the audit log or a log line: the audit says "PIN reset", nothing more.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiohttp import web

from .. import positions, records, restrictions
from ..i18n import _
from ..secrets import PIN_DIGITS_DEFAULT, pin_hash_outdated
from ..storage.schema import cashiers, products
from ..transactions import reading, writing
from . import auditlog, formatting
from .render import FormError, Refused, money, redirect, render, text, whole_number
from .scope import School, found, require_write, school_of

routes = web.RouteTableDef()
MAX_PRICE = 10**8


def _price(form: Any, school: School) -> int:
    return money(form, "price", school.currency, max_len=20, maximum=MAX_PRICE,
                 error=_("the price must be zero or more"))


@routes.get("/admin/products")
async def product_list(request: web.Request) -> web.StreamResponse:
    school = school_of(request)
    async with reading(request.app) as conn:
        # Till order: what the buttons and hotkeys follow (spec v1.1 ``position``).
        rows = (await conn.execute(positions.ordered(school.school_id))).all()
    return render(request, "products.html", {"rows": rows})


def _allergens(form: Any) -> list[str]:
    try:
        return restrictions.parse_allergens(text(form, "allergens", max_len=2000,
                                                 required=False))
    except restrictions.RestrictionError as exc:
        raise FormError(str(exc)) from None


@routes.post("/admin/products")
async def product_create(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school = school_of(request)
    form = await request.post()
    try:
        name = text(form, "name")
        category = text(form, "category", max_len=100)
        price = _price(form, school)
        allergens = _allergens(form)
    except FormError as exc:
        return redirect("/admin/products", _("Not created: %(why)s.", why=exc), error=True)
    async with writing(request.app) as conn:
        pid = await records.create_product(conn, school.school_id, name, price, category,
                                           allergens=allergens)
        await auditlog.record(conn, request, "product_created", school_id=school.school_id,
                              target_type="product", target_id=pid,
                              after={"name": name, "price": price, "category": category,
                                     "allergens": allergens})
    return redirect("/admin/products", _("Product %(name)s created.", name=name))


@routes.post("/admin/products/{product_id}")
async def product_update(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school = school_of(request)
    product_id = request.match_info["product_id"]
    form = await request.post()
    changes: dict[str, Any] = {}
    try:
        if "name" in form:
            changes["name"] = text(form, "name")
        if "category" in form:
            changes["category"] = text(form, "category", max_len=100)
        if "price" in form:
            changes["price"] = _price(form, school)
        if "active" in form:
            changes["active"] = form["active"] == "1"
        if "allergens" in form:
            changes["allergens"] = _allergens(form)
    except FormError as exc:
        return redirect("/admin/products", _("Not saved: %(why)s.", why=exc), error=True)
    async with writing(request.app) as conn:
        row = found((await conn.execute(sa.select(products).where(
            products.c.school_id == school.school_id,
            products.c.product_id == product_id))).first())
        changes = {k: v for k, v in changes.items() if row._mapping[k] != v}
        if not changes:
            raise Refused("/admin/products", _("Nothing changed."))
        await records.update_product(conn, school.school_id, product_id, **changes)
        action = ("product_deactivated" if changes.get("active") is False else
                  "product_activated" if changes.get("active") is True else "product_updated")
        await auditlog.record(conn, request, action, school_id=school.school_id,
                              target_type="product", target_id=product_id,
                              before={k: row._mapping[k] for k in changes}, after=changes)
    if "price" in changes:
        return redirect("/admin/products", _("Product saved (price %(price)s).",
                                             price=formatting.money(changes["price"],
                                                                    school.currency)))
    return redirect("/admin/products", _("Product saved."))


@routes.post("/admin/products/{product_id}/move")
async def product_move(request: web.Request) -> web.StreamResponse:
    """Move a product up or down one place, or to a given place, on the till. Only the rows
    whose place changed are renumbered (and reach tills with the next delta)."""
    require_write(request)
    school = school_of(request)
    product_id = request.match_info["product_id"]
    form = await request.post()
    # An arrow button sends its direction; "Move to" sends the typed place (an arrow clicked
    # with a number typed beside it means the arrow).
    direction, place = form.get("direction"), form.get("position")
    step = {"up": -1, "down": 1}.get(str(direction)) if direction else None
    to = whole_number(place) if place and not direction else None
    if (step is None) == (to is None):
        return redirect("/admin/products", _("Not moved: say up, down or a position number."),
                        error=True)
    async with writing(request.app) as conn:
        found((await conn.execute(sa.select(products.c.product_id).where(
            products.c.school_id == school.school_id,
            products.c.product_id == product_id))).first())
        try:
            moved = await positions.move(conn, school.school_id, product_id, to=to, step=step)
        except positions.PositionError as exc:
            raise Refused("/admin/products", _("Not moved: %(why)s.", why=exc)) from None
        if not moved:
            return redirect("/admin/products", _("Nothing moved."))
        await auditlog.record(conn, request, "products_reordered", school_id=school.school_id,
                              target_type="product", target_id=product_id,
                              before={pid: old for pid, old, _ in moved},
                              after={pid: new for pid, _, new in moved})
    return redirect("/admin/products", _("Order saved; tills show it after their next sync."))


@routes.get("/admin/cashiers")
async def cashier_list(request: web.Request) -> web.StreamResponse:
    school = school_of(request)
    async with reading(request.app) as conn:
        rows = (await conn.execute(sa.select(cashiers.c.cashier_id, cashiers.c.name,
                                             cashiers.c.active, cashiers.c.created_at,
                                             cashiers.c.pin_hash)
                                   .where(cashiers.c.school_id == school.school_id)
                                   .order_by(cashiers.c.active.desc(), cashiers.c.name))).all()
    # Only whether the hash is of today's strength reaches the page, never the hash itself.
    listed = [{"cashier_id": r.cashier_id, "name": r.name, "active": r.active,
               "created_at": r.created_at, "pin_outdated": pin_hash_outdated(r.pin_hash)}
              for r in rows]
    return render(request, "cashiers.html", {"rows": listed,
                                             "pin_digits": PIN_DIGITS_DEFAULT})


def _with_pin_note(message: str, pin: str | None) -> str:
    warning = records.pin_warning(pin) if pin else None
    return _("%(said)s Note: %(warning)s.", said=message, warning=warning) if warning \
        else message


def _pin(form: Any) -> str:
    pin = text(form, "pin", max_len=8, label="PIN")
    try:
        records.check_pin(pin)
    except records.RecordError as exc:
        raise FormError(str(exc)) from None
    return pin


@routes.post("/admin/cashiers")
async def cashier_create(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school = school_of(request)
    form = await request.post()
    try:
        name, pin = text(form, "name"), _pin(form)
    except FormError as exc:
        return redirect("/admin/cashiers", _("Not created: %(why)s.", why=exc), error=True)
    async with writing(request.app) as conn:
        cid = await records.create_cashier(conn, school.school_id, name, pin)
        await auditlog.record(conn, request, "cashier_created", school_id=school.school_id,
                              target_type="cashier", target_id=cid,
                              after={"name": name, "pin": "set"})
    return redirect("/admin/cashiers", _with_pin_note(_("Cashier %(name)s created.", name=name),
                                                      pin))


@routes.post("/admin/cashiers/{cashier_id}")
async def cashier_update(request: web.Request) -> web.StreamResponse:
    require_write(request)
    school = school_of(request)
    cashier_id = request.match_info["cashier_id"]
    form = await request.post()
    try:
        name = text(form, "name") if "name" in form else None
        pin = _pin(form) if "pin" in form else None
        active = (form["active"] == "1") if "active" in form else None
    except FormError as exc:
        return redirect("/admin/cashiers", _("Not saved: %(why)s.", why=exc), error=True)
    async with writing(request.app) as conn:
        row = found((await conn.execute(sa.select(cashiers.c.name, cashiers.c.active).where(
            cashiers.c.school_id == school.school_id,
            cashiers.c.cashier_id == cashier_id))).first())
        await records.update_cashier(conn, school.school_id, cashier_id, name=name, pin=pin,
                                     active=active)
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        if name is not None:
            before["name"], after["name"] = row.name, name
        if active is not None:
            before["active"], after["active"] = row.active, active
        if pin is not None:
            after["pin"] = "reset"
        action = ("cashier_pin_reset" if pin is not None else
                  "cashier_deactivated" if active is False else
                  "cashier_activated" if active is True else "cashier_updated")
        await auditlog.record(conn, request, action, school_id=school.school_id,
                              target_type="cashier", target_id=cashier_id, before=before,
                              after=after)
    return redirect("/admin/cashiers",
                    _with_pin_note(_("PIN reset."), pin) if pin else _("Cashier saved."))
