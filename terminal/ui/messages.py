"""Every sentence the core hands the cashier, in the cashier's language.

The core (``terminal/selling``) has no Qt and speaks English: a refusal or an alert carries a
``code``, the raw ``values`` it was built from and an English ``message`` for the CLI and the
logs. The till shows the sentence from the tables here instead, translated with Qt
(``QCoreApplication.translate`` in the contexts "Refusals", "Alerts", "Till" and "Allergens"),
then filled with the values, so a refusal on screen is redrawn in the other language when the
cashier switches. The English templates are the core's own sentences, so English reads the
same on the till and in the CLI.

Placeholders are Python's ``{name}``; translations keep every one of them (a test checks).
A code with no entry here, or values that do not fit its template, falls back to the core's
English message: the cashier always reads something true. ``tests/ui/test_i18n_messages.py``
fails when a code of ``terminal.selling.rules.MESSAGES`` or an alert kind has no entry here or
no finished Arabic translation.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import QCoreApplication

from shared.money import format_minor
from terminal.ui.i18n import isolate


def QT_TRANSLATE_NOOP(context: str, text: str) -> str:
    """Mark ``text`` for ``pyside6-lupdate`` in ``context``; translated when shown."""
    return text


# template key (terminal.selling.rules.MESSAGES) -> the same English sentence, marked for
# translation. The key is the refusal's ``key``: the spec's code, or a finer name where one
# code has several sentences (clock_behind and never_synced are offline_too_long,
# restricted_* are restricted_item). The English must stay equal to the core's (a test checks),
# so a change there is noticed here and in the translations.
REFUSALS: dict[str, str] = {
    "device_revoked": QT_TRANSLATE_NOOP(
        "Refusals", "This terminal has been revoked by the school office, so it cannot sell. "
        "Sales already saved stay on it. Call the school office."),
    "cashier_unknown": QT_TRANSLATE_NOOP(
        "Refusals", "Cashier not recognised on this terminal. Please log in again."),
    "empty_cart": QT_TRANSLATE_NOOP("Refusals", "The cart is empty. Add at least one item."),
    "product_unknown": QT_TRANSLATE_NOOP(
        "Refusals", "An item in the cart is no longer sold here. Remove it and try again."),
    "offline_too_long": QT_TRANSLATE_NOOP(
        "Refusals", "This terminal has not synced for {hours} hours (the limit is {limit}). "
        "Connect it to the network and sync before selling."),
    "clock_behind": QT_TRANSLATE_NOOP(
        "Refusals", "This terminal's clock is behind: it shows {shows}, but this terminal "
        "has already seen {known}. Set the correct date and time, then sync before "
        "selling."),
    "never_synced": QT_TRANSLATE_NOOP(
        "Refusals", "This terminal has never synced (the limit is {limit} hours without a "
        "sync). Connect it to the network and sync before selling."),
    "credential_unknown": QT_TRANSLATE_NOOP(
        "Refusals", "This bracelet is not registered. Send the student to the office."),
    "credential_blocked": QT_TRANSLATE_NOOP(
        "Refusals", "This bracelet is blocked (lost or replaced). "
        "Send the student to the office."),
    "wallet_closed": QT_TRANSLATE_NOOP(
        "Refusals", "This student's account is closed. No purchases are possible."),
    "wallet_frozen": QT_TRANSLATE_NOOP(
        "Refusals", "This student's account is frozen. Purchases are paused by the school."),
    "offline_sale_cap": QT_TRANSLATE_NOOP(
        "Refusals", "Sales above {cap} are not allowed on this terminal. This one is "
        "{total}."),
    "offline_total_cap": QT_TRANSLATE_NOOP(
        "Refusals", "Too much is waiting to be synced ({unsynced}; the limit is {cap}). "
        "Connect to the network and sync before selling more."),
    "daily_limit": QT_TRANSLATE_NOOP(
        "Refusals", "Daily limit: {left} left today of {limit}; this sale is {total}."),
    "insufficient_balance": QT_TRANSLATE_NOOP(
        "Refusals", "Not enough balance: {available} available, the sale is {total}."),
    "void_target_unknown": QT_TRANSLATE_NOOP(
        "Refusals", "There is no sale with this reference on this terminal to void."),
    "void_target_not_posted": QT_TRANSLATE_NOOP(
        "Refusals", "The server did not accept this sale, so there is nothing to void."),
    "void_twice": QT_TRANSLATE_NOOP("Refusals", "This sale has already been voided."),
    "void_of_void": QT_TRANSLATE_NOOP(
        "Refusals", "This is a void, not a sale: it cannot be voided."),
    "restricted_product": QT_TRANSLATE_NOOP(
        "Refusals", "{item} is not allowed for this student: the school blocked this item "
        "for this student."),
    "restricted_category": QT_TRANSLATE_NOOP(
        "Refusals", "{item} is not allowed for this student: the school blocked the "
        "category {category} for this student."),
    "restricted_allergen": QT_TRANSLATE_NOOP(
        "Refusals", "{item} is not allowed for this student: allergy to {allergen}."),
}

# Banners (terminal.selling.alerts), by the alert's ``key`` (its code, or a finer name where
# one code has several sentences) with its ``values``; the English equals the core's.
ALERTS: dict[str, str] = {
    "device_revoked": QT_TRANSLATE_NOOP(
        "Alerts", "This terminal is no longer authorized by the school (revoked): selling is "
        "stopped. Sales saved here stay on it but cannot be sent. Call the school office."),
    "device_unauthorized": QT_TRANSLATE_NOOP(
        "Alerts", "This terminal is no longer authorized by the school ({problem}). "
        "Sales stay saved here but cannot be sent. Call the school office."),
    "clock_behind": QT_TRANSLATE_NOOP(
        "Alerts", "This terminal's clock is behind: it shows {shows}, but this terminal has "
        "already seen {known}. Sales are refused until the date and time are set right and "
        "the terminal syncs."),
    "sales_need_review_one": QT_TRANSLATE_NOOP(
        "Alerts", "1 sale was rejected or in conflict on the server. "
        "Open History (F4) to see them."),
    "sales_need_review": QT_TRANSLATE_NOOP(
        "Alerts", "{count} sales were rejected or in conflict on the server. "
        "Open History (F4) to see them."),
    "offline_total_nearly": QT_TRANSLATE_NOOP(
        "Alerts", "Offline limit nearly reached: {waiting} waiting to sync, the limit is "
        "{cap}. Connect the terminal to the network."),
    "offline_hours_nearly": QT_TRANSLATE_NOOP(
        "Alerts", "Not synced for {hours} hours; selling stops after {limit} hours. "
        "Connect the terminal to the network."),
    "offline": QT_TRANSLATE_NOOP(
        "Alerts", "Offline: the server cannot be reached. Sales are saved on this terminal "
        "and will be sent automatically."),
}

# What the till itself says in the answer band (Outcome.code -> sentence), so a switch of
# language redraws these too.
TILL: dict[str, str] = {
    "locked": QT_TRANSLATE_NOOP("Till", "Log in first: the counter is locked."),
    "balance_only": QT_TRANSLATE_NOOP(
        "Till", "Balance only: the cart is empty, nothing was charged."),
    "voided": QT_TRANSLATE_NOOP("Till", "Sale voided: the money goes back to the student."),
}

# Allergen names come from the school's data in lower case (spec v1.1); the common ones are
# translated, anything else is shown as the school wrote it.
ALLERGENS = {
    "peanut": QT_TRANSLATE_NOOP("Allergens", "peanut"),
    "peanuts": QT_TRANSLATE_NOOP("Allergens", "peanuts"),
    "tree nuts": QT_TRANSLATE_NOOP("Allergens", "tree nuts"),
    "nuts": QT_TRANSLATE_NOOP("Allergens", "nuts"),
    "milk": QT_TRANSLATE_NOOP("Allergens", "milk"),
    "dairy": QT_TRANSLATE_NOOP("Allergens", "dairy"),
    "lactose": QT_TRANSLATE_NOOP("Allergens", "lactose"),
    "egg": QT_TRANSLATE_NOOP("Allergens", "egg"),
    "eggs": QT_TRANSLATE_NOOP("Allergens", "eggs"),
    "gluten": QT_TRANSLATE_NOOP("Allergens", "gluten"),
    "wheat": QT_TRANSLATE_NOOP("Allergens", "wheat"),
    "soy": QT_TRANSLATE_NOOP("Allergens", "soy"),
    "sesame": QT_TRANSLATE_NOOP("Allergens", "sesame"),
    "fish": QT_TRANSLATE_NOOP("Allergens", "fish"),
    "shellfish": QT_TRANSLATE_NOOP("Allergens", "shellfish"),
    "crustaceans": QT_TRANSLATE_NOOP("Allergens", "crustaceans"),
    "mustard": QT_TRANSLATE_NOOP("Allergens", "mustard"),
    "celery": QT_TRANSLATE_NOOP("Allergens", "celery"),
    "lupin": QT_TRANSLATE_NOOP("Allergens", "lupin"),
    "molluscs": QT_TRANSLATE_NOOP("Allergens", "molluscs"),
    "sulphites": QT_TRANSLATE_NOOP("Allergens", "sulphites"),
}

# Why the server stopped answering this terminal (the alert's "problem"), in words.
PROBLEMS = {
    "revoked": QT_TRANSLATE_NOOP("Alerts", "revoked"),
    "unauthorized": QT_TRANSLATE_NOOP("Alerts", "unauthorized"),
}

# Values that are amounts in minor units when the core passes them raw (with "currency").
MONEY_FIELDS = frozenset({"cap", "total", "unsynced", "spent", "left", "available",
                          "waiting"})


def placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


def _shown(values: Mapping[str, Any]) -> dict[str, str]:
    """Each value as the cashier reads it: money formatted, an allergen translated."""
    currency = values.get("currency")
    out: dict[str, str] = {}
    for key, value in values.items():
        if key in MONEY_FIELDS and isinstance(value, int) and isinstance(currency, str):
            out[key] = format_minor(value, currency)
        elif key == "allergen" and isinstance(value, str) and value.lower() in ALLERGENS:
            out[key] = QCoreApplication.translate("Allergens", ALLERGENS[value.lower()])
        elif key == "problem" and value in PROBLEMS:
            out[key] = QCoreApplication.translate("Alerts", PROBLEMS[value])
        else:
            out[key] = str(value)
    return out


def _fill(context: str, template: str, values: Mapping[str, Any]) -> str | None:
    shown = _shown(values)
    if not placeholders(template) <= shown.keys():
        return None
    isolated = {key: isolate(value) for key, value in shown.items()}
    return QCoreApplication.translate(context, template).format(**isolated)


def refusal_text(key: str | None, values: Mapping[str, Any] | None, fallback: str) -> str:
    """The refusal with template ``key`` in the current language, or ``fallback`` (the
    core's English) when the key is unknown here or the values do not fit."""
    template = REFUSALS.get(key or "")
    if template is None:
        return fallback
    return _fill("Refusals", template, values or {}) or fallback


def alert_key(alert: object) -> str:
    """The template key of a core alert: its own ``key`` when it has one, else derived from
    its code and values."""
    key = getattr(alert, "key", "") or str(getattr(alert, "code", ""))
    values = values_of(alert)
    if key == "device_revoked" and values.get("problem") not in (None, "revoked"):
        return "device_unauthorized"
    if key == "sales_need_review" and str(values.get("count")) == "1":
        return "sales_need_review_one"
    return key


def alert_text(alert: object) -> str:
    """A core alert's banner in the current language (its English message as a fallback)."""
    fallback = str(getattr(alert, "message", ""))
    template = ALERTS.get(alert_key(alert))
    if template is None:
        return fallback
    return _fill("Alerts", template, values_of(alert)) or fallback


def refusal_of(refused: object) -> str:
    """A core refusal (``Refusal`` or ``SaleRefused``) in the current language."""
    key = getattr(refused, "key", "") or getattr(refused, "code", "")
    return refusal_text(str(key), values_of(refused), str(getattr(refused, "message", "")))


def till_text(code: str | None, fallback: str) -> str:
    template = TILL.get(code or "")
    return QCoreApplication.translate("Till", template) if template else fallback


def values_of(thing: object) -> Mapping[str, Any]:
    """The raw ``values`` a refusal or an alert of the core carries ({} from an older core)."""
    values = getattr(thing, "values", None)
    return values if isinstance(values, Mapping) else {}
