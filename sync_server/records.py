"""Creating and changing a school's records while keeping the snapshot contract.

Every change to a row terminals mirror (wallets, bracelets, products, cashiers, settings) ends
with the school's version bump and a stamp on the changed rows, in the caller's transaction;
that is what makes the change reach every terminal through the next snapshot delta. The admin
console, the roster import and ``seed-demo`` all go through here.
"""

from __future__ import annotations

import secrets as pysecrets
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow
from shared.ids import new_id

from . import positions

# Bracelets live in their own module (inventory + history); callers keep writing
# ``records.assign_credential`` and catching ``records.RecordError``.
from .bracelet_inventory import AlreadyAssigned as AlreadyAssigned
from .bracelet_inventory import assign_credential as assign_credential
from .bracelet_inventory import block_credential as block_credential
from .bracelet_inventory import deliver_bracelet as deliver_bracelet
from .bracelet_inventory import replace_credential as replace_credential
from .bracelet_inventory import retire_bracelet as retire_bracelet
from .bracelet_inventory import stock_bracelet as stock_bracelet
from .i18n import _
from .ledger import versions
from .ledger.accounts import SYSTEM_KINDS, system_account
from .ledger.locks import hold_wallet
from .record_errors import RecordError as RecordError
from .record_errors import parse_uid as parse_uid
from .restrictions import RestrictionError, parse_allergens
from .secrets import (
    PIN_DIGITS_DEFAULT,
    code_hash,
    hash_password,
    hash_pin,
    new_enrollment_code,
    off_loop,
)
from .storage.schema import (
    accounts,
    admin_users,
    cashiers,
    devices,
    enrollment_codes,
    product_prices,
    products,
    schools,
    wallets,
)

DEFAULT_SETTINGS: dict[str, Any] = {
    "offline_max_sale": 5000, "offline_max_unsynced_total": 200_000,
    "offline_max_hours": 72, "overdraft_limit": 0,
}


# A student who left is ``inactive`` (the roster's word); the wallet terminals see is then
# ``closed``, so tills refuse sales (docs/admin.md, "Students who leave").
STUDENT_STATUSES = ("active", "inactive")
ADMIN_ROLES = ("platform_admin", "school_admin", "school_manager", "school_viewer")
MIN_PASSWORD_LENGTH = 12  # generated ones are 16 (secrets.new_password)


async def _update_one(conn: AsyncConnection, school_id: str, table: sa.Table,
                      key: sa.ColumnElement[bool], what: str, values: dict[str, Any]) -> None:
    """Bump the school's version and stamp it on the one row of this school that ``key``
    picks, with ``values``; RecordError when there is no such row."""
    version = await versions.bump(conn, school_id)
    result = await conn.execute(sa.update(table).where(table.c.school_id == school_id, key)
                                .values(**values, version=version))
    if result.rowcount != 1:
        raise RecordError(f"no such {what} in this school")


async def create_school(conn: AsyncConnection, name: str, currency: str = "SAR",
                        timezone: str = "Asia/Riyadh", **settings: int) -> str:
    school_id = new_id("sch")
    now = utcnow()
    await conn.execute(sa.insert(schools).values(
        school_id=school_id, name=name, currency=currency, timezone=timezone,
        **{**DEFAULT_SETTINGS, **settings}, version=1, settings_version=1,
        snapshot_epoch=pysecrets.token_hex(8), created_at=now))
    await conn.execute(sa.insert(accounts), [
        {"account_id": system_account(school_id, kind), "school_id": school_id, "kind": kind,
         "created_at": now} for kind in SYSTEM_KINDS])
    return school_id


async def update_settings(conn: AsyncConnection, school_id: str, **settings: int) -> None:
    unknown = set(settings) - set(DEFAULT_SETTINGS)
    if unknown:
        raise RecordError(f"unknown settings: {', '.join(sorted(unknown))}")
    version = await versions.bump(conn, school_id)
    await conn.execute(sa.update(schools).where(schools.c.school_id == school_id)
                       .values(**settings, settings_version=version))


async def set_low_balance_threshold(conn: AsyncConnection, school_id: str,
                                    threshold: int | None) -> None:
    """Parents are told when a balance falls below ``threshold`` (None: never). Server-side
    only, so terminals' settings version is not bumped (they would fetch nothing new)."""
    if threshold is not None and threshold < 0:
        raise RecordError("the low-balance threshold must be zero or more")
    await conn.execute(sa.update(schools).where(schools.c.school_id == school_id)
                       .values(low_balance_threshold=threshold))


async def create_wallet(conn: AsyncConnection, school_id: str, display_name: str, *,
                        daily_limit: int | None = None, status: str = "active",
                        student_number: str | None = None, grade: str | None = None,
                        homeroom: str | None = None, student_status: str = "active",
                        parent_email: str | None = None, parent_phone: str | None = None,
                        language: str | None = None) -> str:
    if student_status not in STUDENT_STATUSES:
        raise RecordError("student status must be active or inactive")
    wallet_id = new_id("wal")
    now = utcnow()
    await conn.execute(sa.insert(accounts).values(
        account_id=wallet_id, school_id=school_id, kind="wallet", created_at=now))
    version = await versions.bump(conn, school_id)
    await conn.execute(sa.insert(wallets).values(
        wallet_id=wallet_id, school_id=school_id, display_name=display_name,
        student_number=student_number, grade=grade, homeroom=homeroom, balance=0,
        daily_limit=daily_limit,
        status=status, version=version, created_at=now, updated_at=now,
        student_status=student_status, parent_email=parent_email, parent_phone=parent_phone,
        language=language, left_at=now if student_status == "inactive" else None))
    return wallet_id


async def update_wallet(conn: AsyncConnection, school_id: str, wallet_id: str,
                        **changes: Any) -> None:
    allowed = {"display_name", "daily_limit", "status", "student_number", "grade", "homeroom",
               "student_status", "parent_email", "parent_phone", "language", "left_at"}
    if set(changes) - allowed:
        raise RecordError(f"cannot change {', '.join(sorted(set(changes) - allowed))}")
    if changes.get("status") not in (None, "active", "frozen", "closed"):
        raise RecordError("status must be active, frozen or closed")
    if changes.get("student_status") not in (None, *STUDENT_STATUSES):
        raise RecordError("student status must be active or inactive")
    # Wallet before school: the lock order every sales batch uses (no deadlock between them).
    if not await hold_wallet(conn, school_id, wallet_id):
        raise RecordError("no such wallet in this school")
    await _update_one(conn, school_id, wallets, wallets.c.wallet_id == wallet_id, "wallet",
                      {**changes, "updated_at": utcnow()})


async def create_product(conn: AsyncConnection, school_id: str, name: str, price: int,
                         category: str, *, active: bool = True,
                         valid_from: datetime | None = None,
                         allergens: list[str] | None = None) -> str:
    """A new product goes after the school's last one (``positions.next_position``): adding
    a product never moves the buttons cashiers already know."""
    if price < 0:
        raise RecordError("price cannot be negative")
    product_id = new_id("prd")
    now = utcnow()
    version = await versions.bump(conn, school_id)
    position = await positions.next_position(conn, school_id)
    await conn.execute(sa.insert(products).values(
        product_id=product_id, school_id=school_id, name=name, price=price, category=category,
        active=active, version=version, created_at=now, allergens=_allergens(allergens or []),
        position=position))
    await conn.execute(sa.insert(product_prices).values(
        product_id=product_id, school_id=school_id, price=price,
        valid_from=valid_from or datetime(2000, 1, 1, tzinfo=now.tzinfo)))
    return product_id


async def update_product(conn: AsyncConnection, school_id: str, product_id: str,
                         **changes: Any) -> None:
    allowed = {"name", "price", "category", "active", "allergens"}
    if set(changes) - allowed:
        raise RecordError(f"cannot change {', '.join(sorted(set(changes) - allowed))}")
    if "price" in changes and int(changes["price"]) < 0:
        raise RecordError("price cannot be negative")
    if "allergens" in changes:
        changes["allergens"] = _allergens(changes["allergens"])
    await _update_one(conn, school_id, products, products.c.product_id == product_id,
                      "product", changes)
    if "price" in changes:
        await conn.execute(sa.insert(product_prices).values(
            product_id=product_id, school_id=school_id, price=changes["price"],
            valid_from=utcnow()))


def _allergens(values: list[str]) -> list[str]:
    """Clean, distinct, sorted allergen names (``restrictions.parse_allergens``' rules)."""
    try:
        return parse_allergens(",".join(values))
    except RestrictionError as exc:
        raise RecordError(str(exc)) from None


async def create_cashier(conn: AsyncConnection, school_id: str, name: str, pin: str) -> str:
    check_pin(pin)
    pin_hash = await _hash_pin(pin)
    cashier_id = new_id("csh")
    version = await versions.bump(conn, school_id)
    await conn.execute(sa.insert(cashiers).values(
        cashier_id=cashier_id, school_id=school_id, name=name, pin_hash=pin_hash,
        active=True, version=version, created_at=utcnow()))
    return cashier_id


async def update_cashier(conn: AsyncConnection, school_id: str, cashier_id: str, *,
                         name: str | None = None, pin: str | None = None,
                         active: bool | None = None) -> None:
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = name
    if pin is not None:
        check_pin(pin)
        changes["pin_hash"] = await _hash_pin(pin)
    if active is not None:
        changes["active"] = active
    if not changes:
        return
    await _update_one(conn, school_id, cashiers, cashiers.c.cashier_id == cashier_id,
                      "cashier", changes)


def check_pin(pin: str) -> None:
    if not (pin.isdigit() and 4 <= len(pin) <= 8):
        raise RecordError(_("a PIN is 4 to 8 digits"))


def pin_warning(pin: str) -> str | None:
    """What to tell the admin who sets a short PIN (still allowed, so existing habits and
    cards keep working): a copied till file gives its hash away, and a short one falls in
    minutes to hours, a 6-digit one in days (docs/terminal.md, "A lost or stolen terminal")."""
    if len(pin) >= PIN_DIGITS_DEFAULT:
        return None
    # In the console's language when shown there (English elsewhere: the CLI, logs).
    return _("a %(n)d-digit PIN can be guessed in minutes to hours by someone who copies a "
             "terminal's disk; use %(digits)d digits or more", n=len(pin),
             digits=PIN_DIGITS_DEFAULT)


async def _hash_pin(pin: str) -> str:
    """argon2id at the PIN parameters takes a few hundred milliseconds of CPU on purpose: do it
    on a worker thread so the server's event loop keeps answering terminals meanwhile."""
    return await off_loop(hash_pin, pin)


async def create_enrollment_code(conn: AsyncConnection, school_id: str, ttl: timedelta,
                                 created_by: str | None = None) -> str:
    exists = (await conn.execute(sa.select(schools.c.school_id)
                                 .where(schools.c.school_id == school_id))).first()
    if exists is None:
        raise RecordError(f"no school {school_id!r}")
    code = new_enrollment_code()
    now = utcnow()
    await conn.execute(sa.insert(enrollment_codes).values(
        code_hash=code_hash(code), school_id=school_id, created_at=now, expires_at=now + ttl,
        created_by=created_by))
    return code


async def revoke_device(conn: AsyncConnection, device_id: str,
                        school_id: str | None = None) -> None:
    where = [devices.c.device_id == device_id]
    if school_id is not None:
        where.append(devices.c.school_id == school_id)
    result = await conn.execute(sa.update(devices).where(*where)
                                .values(status="revoked", revoked_at=utcnow()))
    if result.rowcount != 1:
        raise RecordError(f"no device {device_id!r}")


async def create_admin(conn: AsyncConnection, email: str, password: str, role: str,
                       school_id: str | None, name: str = "") -> str:
    if role not in ADMIN_ROLES:
        raise RecordError("unknown role")
    if (role == "platform_admin") != (school_id is None):
        raise RecordError("platform admins have no school; school roles need one")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise RecordError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if school_id is not None and not (await conn.execute(
            sa.select(schools.c.school_id).where(schools.c.school_id == school_id))).first():
        raise RecordError(f"no school {school_id!r}")
    if (await conn.execute(sa.select(admin_users.c.user_id).where(
            admin_users.c.email == email.strip().lower()))).first() is not None:
        raise RecordError("an admin with this email already exists")
    user_id = new_id("usr")
    await conn.execute(sa.insert(admin_users).values(
        user_id=user_id, email=email.strip().lower(), name=name or email,
        password_hash=await off_loop(hash_password, password), role=role, school_id=school_id,
        active=True, created_at=utcnow()))
    return user_id

