"""What the cashier app asks the core for: local settings, voids it may offer, the name
lookup, the product order, school time."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from terminal.core import Terminal
from terminal.errors import SaleRefused
from terminal.settings import LocalSettings
from terminal.store import outbox, state

from .conftest import T0, Page, SettableClock, bracelet, offline_terminal, wallet

UID = "04A1B2C3D4E5F6"


def till(tmp_path: Path, **page: Any) -> Terminal:
    page.setdefault("wallets", [wallet("w1", 5000)])
    page.setdefault("credentials", [bracelet(UID, "w1")])
    return offline_terminal(tmp_path / "t", Page(**page))


# ------------------------------------------------------------------ local settings


def test_local_settings_defaults_changes_and_persistence(tmp_path: Path) -> None:
    term = till(tmp_path)
    assert term.local_settings() == LocalSettings("en", 70, False)
    changed = term.update_local_settings(language="ar", sound_volume=0, sound_muted=True)
    assert changed == LocalSettings("ar", 0, True) == term.local_settings()
    term.close()
    again = Terminal(tmp_path / "t")               # kept in the terminal's own file
    assert again.local_settings() == LocalSettings("ar", 0, True)
    assert again.update_local_settings(sound_volume=100).sound_volume == 100


@pytest.mark.parametrize(("changes", "words"), [
    ({"language": "fr"}, "language must be 'en' (English) or 'ar' (Arabic)"),
    ({"sound_volume": 101}, "sound volume must be a whole number from 0 to 100"),
    ({"sound_volume": -1}, "sound volume must be a whole number from 0 to 100"),
    ({"sound_volume": 50.5}, "sound volume must be a whole number from 0 to 100"),
    ({"sound_volume": True}, "sound volume must be a whole number from 0 to 100"),
    ({"sound_muted": "yes"}, "sound muted must be yes or no"),
    ({"volume": 5}, "unknown setting: volume"),
])
def test_bad_local_settings_are_refused_in_words_and_change_nothing(
        tmp_path: Path, changes: dict[str, Any], words: str) -> None:
    term = till(tmp_path)
    term.update_local_settings(sound_volume=40)
    with pytest.raises(ValueError, match="^" + words.replace("(", r"\(").replace(")", r"\)")):
        term.update_local_settings(**{"language": "ar", **changes})
    assert term.local_settings() == LocalSettings("en", 40, False)


def test_a_hand_edited_setting_reads_as_its_default(tmp_path: Path) -> None:
    term = till(tmp_path)
    state.set_local_setting(term.db, "sound_volume", "loud")
    state.set_local_setting(term.db, "language", "de")
    assert term.local_settings() == LocalSettings()


# ------------------------------------------------------------------ voids


def test_void_refusal_before_the_dialog(tmp_path: Path) -> None:
    term = till(tmp_path)
    sale = term.record_sale("cash1", [("water", 1)], uid=UID)
    assert term.void_refusal(sale.ref) is None
    void = term.void(sale.ref, "cash1")
    twice = term.void_refusal(sale.ref)
    assert twice is not None and twice.code == "void_twice"
    assert twice.message == "This sale has already been voided."
    of_void = term.void_refusal(void.ref)
    assert of_void is not None and of_void.key == "void_of_void"
    assert of_void.message == "This is a void, not a sale: it cannot be voided."
    unknown = term.void_refusal("0193a0e4-0000-7000-8000-000000000000")
    assert unknown is not None and unknown.code == "void_target_unknown"
    # void() says the same things when called anyway
    for ref, code in ((sale.ref, "void_twice"), (void.ref, "void_target_unknown")):
        with pytest.raises(SaleRefused) as caught:
            term.void(ref, "cash1")
        assert caught.value.code == code
    assert outbox.last_seq(term.db.conn) == 2


def test_void_refusal_of_a_sale_the_server_rejected_and_of_a_revoked_till(
        tmp_path: Path) -> None:
    term = till(tmp_path)
    sale = term.record_sale("cash1", [("water", 1)], uid=UID)
    term.db.conn.execute("UPDATE outbox SET outcome = 'rejected' WHERE ref = ?", (sale.ref,))
    term.db.conn.commit()
    refused = term.void_refusal(sale.ref)
    assert refused is not None and refused.code == "void_target_not_posted"
    state.record_contact(term.db, T0, ok=False, error="revoked", auth_problem="revoked")
    refused = term.void_refusal(sale.ref)
    assert refused is not None and refused.code == "device_revoked"


# ------------------------------------------------------------------ lookup


def student(wallet_id: str, name: str, grade: str | None, homeroom: str | None,
            **extra: Any) -> dict[str, Any]:
    return {**wallet(wallet_id, 5000, name=name), "grade": grade, "homeroom": homeroom,
            **extra}


def test_same_name_students_sit_together_and_can_be_told_apart(tmp_path: Path) -> None:
    term = till(tmp_path, wallets=[
        student("w3", "Sara A.", "Grade 4", "4B"),
        student("w1", "Sara Ahmed", "Grade 2", "2A"),
        student("w2", "sara a.", "Grade 1", "1A"),
        student("w4", "Sara A.", "Grade 4", "4A",
                restrictions={"allergens": ["peanut"]}),
        student("w5", "Omar", None, None),
    ], credentials=[bracelet("04A1B2C3D4E580", "w4"), bracelet("04FFFFFFFF0001", "w4",
                                                              "blocked"),
                    bracelet("0411223344", "w3"), bracelet("04AABBCCDD0099", "w2")])
    found = term.search_wallets("sara a")
    # one name (whatever its capitals) together, then by grade and homeroom
    assert [(v.display_name, v.grade, v.homeroom) for v in found] == [
        ("sara a.", "Grade 1", "1A"), ("Sara A.", "Grade 4", "4A"),
        ("Sara A.", "Grade 4", "4B"), ("Sara Ahmed", "Grade 2", "2A")]
    by_id = {v.wallet_id: v for v in found}
    assert by_id["w4"].masked_uids == ("04A1…E580",)          # the blocked one is not shown
    assert by_id["w3"].masked_uids == ("0411…3344",)
    assert by_id["w1"].masked_uids == ()
    assert by_id["w4"].restrictions.allergens == ("peanut",)
    assert not by_id["w3"].restrictions
    # no full UID anywhere in what the lookup returns
    assert "04A1B2C3D4E580" not in repr(found) and "0411223344" not in repr(found)
    view = term.wallet_for_uid("04A1B2C3D4E580")
    assert view is not None and (view.grade, view.homeroom) == ("Grade 4", "4A")
    assert view.credential_status == "active" and view.restrictions.allergens == ("peanut",)


def test_lookup_of_arabic_names(tmp_path: Path) -> None:
    term = till(tmp_path, wallets=[student("w1", "سارة أحمد", "الصف ٤", "٤أ"),
                                   student("w2", "عمر خالد", None, None)])
    found = term.search_wallets("سارة")
    assert [(v.display_name, v.grade, v.homeroom) for v in found] == [
        ("سارة أحمد", "الصف ٤", "٤أ")]


@pytest.mark.parametrize(("typed", "expected"), [
    ("ساره", ["w1"]),              # hā' typed for tā' marbūṭa
    ("احمد", ["w1", "w3"]),        # no hamza on the alef: أحمد and إحمد and احمد
    ("أحمد", ["w1", "w3"]),
    ("منى", ["w4"]), ("مني", ["w4"]),  # alif maqṣūra or yā'
    ("عُمَر", ["w2"]),              # vowel marks typed
    ("JOSÉ", ["w5"]), ("jose", ["w5"]),
    ("ليلى", []),
])
def test_lookup_folds_arabic_spelling_variants_and_case(
        tmp_path: Path, typed: str, expected: list[str]) -> None:
    """A cashier types a name as heard; spelling variants that are the same name in Arabic
    (hamza on the alef, final ة/ه, ى/ي, harakat, tatweel) must find it, and nothing else."""
    term = till(tmp_path, wallets=[student("w1", "سارة أحمد", "4", "4A"),
                                   student("w2", "عمر خالد", None, None),
                                   student("w3", "إحمد علي", "5", "5B"),
                                   student("w4", "منـى يوسف", "3", "3C"),
                                   student("w5", "José Pérez", "2", "2A")])
    assert sorted(v.wallet_id for v in term.search_wallets(typed)) == expected


# ------------------------------------------------------------------ products, time


def product(pid: str, name: str, position: int | None, category: str = "Food",
            **extra: Any) -> dict[str, Any]:
    return {"product_id": pid, "name": name, "price": 100, "category": category,
            "active": True, "position": position, **extra}


def test_products_follow_the_admins_positions_unset_ones_last(tmp_path: Path) -> None:
    term = till(tmp_path, products=[
        product("p1", "Apple", 3), product("p2", "Zaatar", 1, "Bakery"),
        product("p3", "Banana", None), product("p4", "Milk", 2, "Drinks",
                                                 allergens=["milk"]),
        product("p5", "Avocado", None), product("p6", "Gone", 0, active=False)])
    listed = term.products()
    assert [p.product_id for p in listed] == ["p2", "p4", "p1", "p5", "p3"]
    assert [p.position for p in listed] == [1, 2, 3, None, None]
    assert listed[1].allergens == ("milk",)


def test_school_now_is_in_the_school_time_zone(tmp_path: Path) -> None:
    clock = SettableClock()
    term = Terminal(tmp_path / "fresh", clock=clock)
    assert term.school_now() == T0 and term.school_now().utcoffset().total_seconds() == 0
    term = offline_terminal(tmp_path / "t", Page(), clock)      # Asia/Riyadh
    now = term.school_now()
    assert now == T0 and now.tzinfo is not None
    assert (now.hour, now.utcoffset().total_seconds()) == (12, 3 * 3600)
    assert now.astimezone(UTC).hour == 9


def test_timing_defaults_are_declared_once() -> None:
    """The worker and the backoff take their defaults from terminal/settings.py (the app, the
    main window and the Qt bridge import the same names)."""
    import inspect
    import random

    from terminal import settings
    from terminal.sync.backoff import Backoff
    from terminal.sync.worker import SyncWorker

    interval = inspect.signature(SyncWorker).parameters["interval"].default
    assert interval is settings.SYNC_INTERVAL_S
    backoff = Backoff(rng=random.Random(1))
    assert (backoff.base, backoff.cap) == (settings.BACKOFF_BASE_S, settings.BACKOFF_CAP_S)
    delays = [backoff.next_delay() for _ in range(20)]
    assert max(delays) <= settings.BACKOFF_CAP_S
