"""The sentences the core hands the cashier (refusals, banners), said in the cashier's language
by terminal/ui/messages.py from the core's key and values: every refusal and every banner the
core can produce comes out in Arabic, with its values, and in the core's own English."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from PySide6.QtWidgets import QApplication

from terminal.selling.alerts import AlertFacts, alerts
from terminal.selling.rules import MESSAGES, refusal
from terminal.ui import i18n, messages
from tests.ui.i18n_support import build_catalogues

ARABIC = re.compile(r"[\u0600-\u06ff]")
LATIN_WORD = re.compile(r"[A-Za-z]{3,}")


def plain(text: str) -> str:
    return text.replace("\u2068", "").replace("\u2069", "")


@pytest.fixture(scope="module", autouse=True)
def _catalogues() -> None:
    build_catalogues()


@pytest.fixture
def arabic(qapp: QApplication) -> Iterator[None]:
    i18n.switch(qapp, "ar")
    yield
    i18n.switch(qapp, "en")


def sample_values(key: str) -> dict[str, str]:
    """Values for every placeholder of ``key``, as the core passes them (formatted)."""
    return {name: {"item": "لبن", "category": "وجبات", "allergen": "milk",
                   "shows": "2026-11-27 10:00", "known": "2026-11-27 11:00"}.get(
                       name, "12.50 SAR") for name in messages.placeholders(MESSAGES[key])}


def all_alerts() -> list[object]:
    """One of each banner the core can raise, by walking the facts that raise them."""
    base = dict(currency="SAR", enrolled=True, server_reachable=False, ever_contacted=True,
                auth_problem=None, unanswered_total=19000, offline_max_unsynced_total=20000,
                hours_since_sync=70.0, offline_max_hours=72, unreviewed=3,
                clock_shows="2026-11-27 10:00", clock_behind="2026-11-27 11:00")
    found = alerts(AlertFacts(**base))  # type: ignore[arg-type]
    found += alerts(AlertFacts(**{**base, "unreviewed": 1, "auth_problem": "revoked"}))  # type: ignore[arg-type]
    found += alerts(AlertFacts(**{**base, "auth_problem": "unauthorized"}))  # type: ignore[arg-type]
    return list({(a.key, a.message): a for a in found}.values())


def test_every_refusal_reads_in_english_as_the_core_says_it(qapp: QApplication) -> None:
    i18n.switch(qapp, "en")
    for key in MESSAGES:
        made = refusal(key, **sample_values(key))
        assert plain(messages.refusal_of(made)) == made.message, key


def test_every_refusal_reads_in_arabic_with_its_values(arabic: None) -> None:
    for key in MESSAGES:
        made = refusal(key, **sample_values(key))
        text = plain(messages.refusal_of(made))
        assert text != made.message and ARABIC.search(text), f"{key} is not in Arabic: {text}"
        for name, value in made.values.items():
            shown = "الحليب" if name == "allergen" else value  # a known allergen, translated
            assert shown in text, f"{key}: {name}={value!r} missing from {text!r}"
        assert not LATIN_WORD.search(text.replace("SAR", "")), f"{key}: English left: {text}"


def test_every_banner_reads_in_both_languages(qapp: QApplication) -> None:
    found = all_alerts()
    kinds = {a.key for a in found}  # type: ignore[attr-defined]
    assert kinds == set(messages.ALERTS), "a banner of the core has no sentence here, " \
        "or a sentence here is for no banner"
    i18n.switch(qapp, "en")
    for alert in found:
        assert plain(messages.alert_text(alert)) == alert.message  # type: ignore[attr-defined]
    i18n.switch(qapp, "ar")
    try:
        for alert in found:
            text = plain(messages.alert_text(alert))
            assert ARABIC.search(text) and not LATIN_WORD.search(text.replace("F4", "")
                                                                 .replace("SAR", "")), text
    finally:
        i18n.switch(qapp, "en")


def test_values_are_isolated_so_amounts_keep_their_order(arabic: None) -> None:
    made = refusal("insufficient_balance", available="2.00 SAR", total="15.00 SAR")
    text = messages.refusal_of(made)
    assert "\u20682.00 SAR\u2069" in text and "\u206815.00 SAR\u2069" in text


def test_unknown_keys_and_values_that_do_not_fit_fall_back_to_the_english(
        arabic: None) -> None:
    assert messages.refusal_text("no_such_key", {}, "As the core said it.") == \
        "As the core said it."
    # a template whose values are missing is not filled with holes
    assert messages.refusal_text("daily_limit", {"left": "1.00 SAR"}, "fallback") == "fallback"
    assert messages.till_text("locked", "x") == "سجّل الدخول أولًا: الجهاز مقفل."
    assert messages.till_text("not_a_code", "as it was") == "as it was"
