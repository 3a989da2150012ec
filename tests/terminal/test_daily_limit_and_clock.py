"""The daily limit counted with the server's ``spent_today`` (spec v1.1) and the clock rule,
through the same ``Terminal.record_sale`` the CLI and the GUI call, on a real store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from shared.protocol import SalesPushResponse
from terminal.core import Terminal
from terminal.errors import SaleRefused
from terminal.selling.alerts import AlertFacts, alerts
from terminal.store import outbox, state
from terminal.store.db import DB_FILENAME
from terminal.store.schema import migrations

from .conftest import T0, Page, SettableClock, bracelet, load_snapshot, offline_terminal, wallet

UID = "04A1B2C3D4E5F6"


def page(*, spent_today: int | None = None, as_of: Any = T0, daily_limit: int = 1500,
         **settings: int) -> Page:
    row = wallet("w1", 10_000, daily_limit=daily_limit)
    row["balance_as_of"] = as_of.isoformat()
    if spent_today is not None:
        row["spent_today"] = spent_today
    result = Page(wallets=[row], credentials=[bracelet(UID, "w1")])
    result.settings.update(settings)
    return result


def refusal(term: Terminal, items: list[tuple[str, int]]) -> SaleRefused:
    before = outbox.last_seq(term.db.conn)
    with pytest.raises(SaleRefused) as info:
        term.record_sale("cash1", items, uid=UID)
    assert outbox.last_seq(term.db.conn) == before, "a refused sale must not use a seq"
    return info.value


def server_applies_queue(term: Terminal, clock: SettableClock) -> None:
    """What a push answered 'applied' stores (the real store_results, the real epoch)."""
    rows = outbox.unacked_batch(term.db.conn, 0, 1000)
    response = SalesPushResponse.model_validate({
        "results": [{"ref": r.ref, "status": "applied"} for r in rows],
        "acked_seq": rows[-1].seq, "missing_seqs": [], "server_time": clock().isoformat()})
    outbox.store_results(term.db, rows, response, state.current_epoch(term.db), clock())


def spent(term: Terminal) -> int:
    view = term.wallet_view("w1")
    assert view is not None
    return view.spent_today


# ------------------------------------------------------------------ daily limit


def test_server_figure_plus_own_sales_not_yet_in_it(tmp_path: Path, clock: SettableClock) -> None:
    term = offline_terminal(tmp_path, page(spent_today=1000), clock)  # other tills: 10.00
    assert spent(term) == 1000
    problem = refusal(term, [("meal", 1)])                          # 1000 + 1200 > 1500
    assert problem.code == "daily_limit" and "5.00 SAR left today of 15.00 SAR" in problem.message
    sale = term.record_sale("cash1", [("water", 3)], uid=UID)       # 1000 + 450 = 1450
    assert spent(term) == 1450

    server_applies_queue(term, clock)            # applied, but after the snapshot was taken
    assert spent(term) == 1450
    clock.advance(minutes=1)
    load_snapshot(term, page(spent_today=1450, as_of=clock()), clock())  # the figure holds it
    assert spent(term) == 1450                   # counted once, not 1900
    assert refusal(term, [("water", 1)]).code == "daily_limit"

    term.void(sale.ref, "cash1")                 # the figure still holds the sale: take it off
    assert spent(term) == 1000
    server_applies_queue(term, clock)
    clock.advance(minutes=1)
    load_snapshot(term, page(spent_today=1000, as_of=clock()), clock())
    assert spent(term) == 1000
    term.record_sale("cash1", [("water", 3)], uid=UID)
    assert spent(term) == 1450


def test_a_figure_of_another_day_counts_for_nothing(tmp_path: Path, clock: SettableClock) -> None:
    term = offline_terminal(tmp_path, page(spent_today=1400, as_of=T0 - timedelta(days=1)),
                            clock)
    assert spent(term) == 0
    term.record_sale("cash1", [("meal", 1)], uid=UID)
    assert spent(term) == 1200

    # The same at school midnight: the row of 23:59 says nothing about the new day.
    clock.now = T0.replace(hour=20, minute=59)                      # 23:59 in Riyadh
    load_snapshot(term, page(spent_today=1400, as_of=clock()), clock())
    assert spent(term) == 1400 + 1200   # our sale is not answered yet: not in the figure
    clock.advance(minutes=2)                                        # 00:01, the next day
    assert spent(term) == 0
    term.record_sale("cash1", [("meal", 1)], uid=UID)


def test_a_server_without_spent_today_leaves_every_own_sale_counted(tmp_path: Path,
                                                                     clock: SettableClock) -> None:
    term = offline_terminal(tmp_path, page(), clock)  # a v1.0 server: no spent_today
    term.record_sale("cash1", [("meal", 1)], uid=UID)
    server_applies_queue(term, clock)
    clock.advance(minutes=1)
    load_snapshot(term, page(as_of=clock()), clock())  # the balance now holds the sale
    assert term.balance_estimate("w1") == 10_000  # (the test snapshot keeps its balance)
    assert spent(term) == 1200                    # the day's figure did not come: still ours
    assert refusal(term, [("water", 3)]).code == "daily_limit"


def test_a_v1_0_store_upgrades_with_its_queue(tmp_path: Path, clock: SettableClock) -> None:
    db = Database(tmp_path / DB_FILENAME)
    migrations.apply(db, stop_before="m003_spent_today_and_clock")
    db.conn.executescript(f"""
        INSERT INTO device VALUES (1, 'dev_old', 'tok', 'sch', 'SAR', 'http://127.0.0.1:9',
                                   'Counter 1', '{T0.isoformat()}');
        UPDATE sync_state SET settings_json = '{{"currency": "SAR", "offline_max_sale": 5000,
            "offline_max_unsynced_total": 20000, "offline_max_hours": 72,
            "overdraft_limit": 0, "timezone": "Asia/Riyadh"}}',
            last_sync_at = '{T0.isoformat()}', last_contact_ok = 1,
            snapshot_server_time = '{T0.isoformat()}', epoch = 1;
        INSERT INTO wallets VALUES ('w1', 'Student', 10000, 1500, 'active',
                                    '{T0.isoformat()}', 1);
        INSERT INTO credentials VALUES ('{UID}', 'w1', 'active', 1);
        INSERT INTO products VALUES ('meal', 'Lunch', 1200, 'Food', 1, 1);
        INSERT INTO products VALUES ('water', 'Water 330ml', 150, 'Drinks', 1, 1);
        INSERT INTO cashiers VALUES ('cash1', 'Amal', 'x', 1, 1);
        UPDATE seq_counter SET last_seq = 1;
        INSERT INTO outbox (seq, ref, kind, created_at, school_day, cashier_id, wallet_id,
                            lines_json, total, offline)
        VALUES (1, 'r1', 'sale', '2026-11-22T11:00:00.000+03:00', '2026-11-22', 'cash1', 'w1',
                '[]', 1200, 1);
    """)
    db.conn.commit()
    db.close()

    term = Terminal(tmp_path, clock=clock)
    columns = {r[1]: r for r in term.db.conn.execute("PRAGMA table_info(wallets)")}
    assert columns["spent_today"][3] == 0  # nullable: old rows say nothing
    assert state.get_sync_state(term.db).synced_seq == 0
    assert spent(term) == 1200             # the queued sale still counts
    assert refusal(term, [("water", 3)]).code == "daily_limit"
    assert term.record_sale("cash1", [("water", 2)], uid=UID).seq == 2
    assert [r.seq for r in outbox.unacked_batch(term.db.conn, 0, 10)] == [1, 2]


# ------------------------------------------------------------------ the clock


def test_a_clock_behind_the_last_sale_stops_selling_until_a_sync(tmp_path: Path,
                                                                  clock: SettableClock) -> None:
    term = offline_terminal(tmp_path, page(daily_limit=100_000), clock)
    clock.advance(hours=2)
    sale = term.record_sale("cash1", [("water", 1)], uid=UID)       # 14:00 in Riyadh
    clock.advance(minutes=-4)                                       # NTP-sized steps pass
    term.record_sale("cash1", [("water", 1)], uid=UID)
    assert term.clock_behind() is None
    clock.advance(minutes=-2)                                       # 6 minutes behind it
    problem = refusal(term, [("water", 1)])
    assert problem.code == "offline_too_long"
    assert problem.message == (
        "This terminal's clock is behind: it shows 2026-11-22 13:54, but this terminal has "
        "already seen 2026-11-22 14:00. Set the correct date and time, then sync before "
        "selling.")
    assert term.clock_behind() == T0 + timedelta(hours=2)
    assert term.status()["clock_behind"] == "2026-11-22T11:00:00.000+00:00"
    assert [a.code for a in term.alerts()] == ["clock_behind"]
    assert term.void(sale.ref, "cash1").kind == "void"  # voids give money back: allowed

    # A step back within the tolerance, repeated, is still caught (the latest time counts).
    clock.advance(minutes=3)                                        # 13:57: 3 min behind
    assert term.clock_behind() is None
    clock.advance(minutes=-3)
    assert term.clock_behind() is not None

    # A successful sync vouches for the clock: the server's time is the reference again.
    load_snapshot(term, page(daily_limit=100_000), clock())
    assert term.clock_behind() is None
    term.record_sale("cash1", [("water", 1)], uid=UID)
    assert term.alerts() == []


def test_a_clock_behind_the_server_stops_selling(tmp_path: Path, clock: SettableClock) -> None:
    term = offline_terminal(tmp_path, page(daily_limit=100_000), clock)  # server said T0
    clock.advance(minutes=-4, seconds=-59)
    term.record_sale("cash1", [("water", 1)], uid=UID)
    clock.advance(seconds=-2)                                        # 5 min 1 s behind
    assert refusal(term, [("water", 1)]).code == "offline_too_long"
    assert term.clock_behind() == T0
    clock.now = T0
    term.record_sale("cash1", [("water", 1)], uid=UID)


def test_a_backward_clock_cannot_reopen_the_offline_window(tmp_path: Path,
                                                           clock: SettableClock) -> None:
    term = offline_terminal(tmp_path, page(daily_limit=100_000), clock)
    clock.advance(hours=71)
    term.record_sale("cash1", [("water", 1)], uid=UID)
    clock.advance(hours=2)                                           # 73 h since the sync
    problem = refusal(term, [("water", 1)])
    assert problem.code == "offline_too_long" and "73 hours" in problem.message
    clock.now = T0 + timedelta(hours=1)                              # "1 h since the sync"
    problem = refusal(term, [("water", 1)])
    assert problem.code == "offline_too_long" and "clock is behind" in problem.message
    clock.now = T0 - timedelta(hours=1)                              # before the sync itself
    assert refusal(term, [("water", 1)]).code == "offline_too_long"


def test_a_backward_clock_cannot_move_a_sale_into_the_day_before(tmp_path: Path,
                                                                 clock: SettableClock) -> None:
    term = offline_terminal(tmp_path, page(daily_limit=1500), clock)
    clock.now = T0.replace(hour=20, minute=50)                       # 23:50 in Riyadh
    term.record_sale("cash1", [("meal", 1)], uid=UID)
    clock.now = T0.replace(hour=21, minute=1)                        # 00:01, the next day
    term.record_sale("cash1", [("meal", 1)], uid=UID)
    clock.advance(minutes=-2)        # 23:59 again: within the tolerance, but a day back
    problem = refusal(term, [("water", 1)])
    assert problem.code == "offline_too_long" and "clock is behind" in problem.message
    clock.advance(minutes=2)
    term.record_sale("cash1", [("water", 1)], uid=UID)


def facts(**overrides: Any) -> AlertFacts:
    base: dict[str, Any] = {
        "currency": "SAR", "enrolled": True, "server_reachable": True, "ever_contacted": True,
        "auth_problem": None, "unanswered_total": 0, "offline_max_unsynced_total": 10_000,
        "hours_since_sync": 1.0, "offline_max_hours": 72, "unreviewed": 0}
    return AlertFacts(**(base | overrides))


def test_the_clock_alert_comes_right_after_a_revoked_device() -> None:
    codes = [a.code for a in alerts(facts(auth_problem="revoked", unreviewed=1,
                                          clock_shows="2026-11-22 10:00",
                                          clock_behind="2026-11-22 12:00"))]
    assert codes == ["device_revoked", "clock_behind", "sales_need_review"]
    message = alerts(facts(clock_shows="2026-11-22 10:00",
                           clock_behind="2026-11-22 12:00"))[0].message
    assert message.startswith("This terminal's clock is behind: it shows 2026-11-22 10:00")

