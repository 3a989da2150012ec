"""Wrong PINs lock that cashier out for a while: a 4-digit PIN must not be guessable at an
unattended counter."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminal.core import Terminal
from terminal.pins import PinAttempts, PinLockout


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_lockout_starts_after_five_failures_doubles_and_clears_on_success() -> None:
    clock = FakeClock()
    attempts = PinAttempts(clock=clock)
    for _ in range(4):
        attempts.check("c1")
        attempts.record("c1", ok=False)
    attempts.check("c1")  # four failures: still free
    attempts.record("c1", ok=False)
    with pytest.raises(PinLockout) as locked:
        attempts.check("c1")
    assert locked.value.seconds == 30
    assert "Try again in 30 s" in str(locked.value)
    attempts.check("c2")  # other cashiers are not affected
    clock.now += 30
    attempts.check("c1")
    attempts.record("c1", ok=False)
    with pytest.raises(PinLockout) as longer:
        attempts.check("c1")
    assert longer.value.seconds == 60
    clock.now += 60
    attempts.record("c1", ok=True)
    attempts.check("c1")
    attempts.record("c1", ok=False)
    attempts.check("c1")  # the count started again after the success


def test_terminal_refuses_even_the_right_pin_while_locked(live_server, tmp_path: Path) -> None:
    term = Terminal(tmp_path / "t")
    school = live_server.demo["schools"][0]
    assert term.enroll(live_server.url, school["enrollment_code"], "Counter 1") \
        .first_snapshot.completed
    clock = FakeClock()
    term.pin_attempts = PinAttempts(clock=clock)
    cashier = school["cashiers"][0]
    wrong = "9999" if cashier["pin"] != "9999" else "8888"
    for _ in range(5):
        assert not term.verify_pin(cashier["cashier_id"], wrong)
    with pytest.raises(PinLockout):
        term.verify_pin(cashier["cashier_id"], cashier["pin"])
    clock.now += 31
    assert term.verify_pin(cashier["cashier_id"], cashier["pin"])
