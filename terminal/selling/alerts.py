"""What the cashier must be told about the terminal's state, in plain words.

The cashier app shows these as banners. They are decided here, not in a widget, because
"nearly at the offline cap" is a policy (the same numbers the offline rules use) and because a
problem the cashier never sees is a problem nobody fixes. Pure function: no Qt, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.money import format_minor

NEARLY = 0.8  # warn once 80% of an offline cap is used


@dataclass(frozen=True, slots=True)
class Alert:
    """``message`` is English (CLI, logs); the cashier app shows ``key``'s template in the
    cashier's language, filled with ``values`` (placeholders named as in the English)."""

    level: str    # "problem" (red: act now) or "warning" (amber: selling goes on)
    code: str
    message: str
    key: str = ""                      # template key: the code, or a finer name
    values: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AlertFacts:
    currency: str
    enrolled: bool
    server_reachable: bool
    ever_contacted: bool
    auth_problem: str | None
    unanswered_total: int
    offline_max_unsynced_total: int
    hours_since_sync: float | None
    offline_max_hours: int
    unreviewed: int              # rejected/conflicting sales the cashier has not dismissed
    clock_shows: str = ""        # now, as the cashier reads it
    clock_behind: str | None = None  # a later time already seen (rules.clock_behind); None: ok


def alerts(f: AlertFacts) -> list[Alert]:
    """Most urgent first."""
    out: list[Alert] = []
    if not f.enrolled:
        return out
    if f.auth_problem == "revoked":
        out.append(Alert("problem", "device_revoked",
                         "This terminal is no longer authorized by the school (revoked): "
                         "selling is stopped. Sales saved here stay on it but cannot be sent. "
                         "Call the school office.", "device_revoked", {"problem": "revoked"}))
    elif f.auth_problem is not None:
        out.append(Alert("problem", "device_revoked",
                         "This terminal is no longer authorized by the school "
                         f"({f.auth_problem}). Sales stay saved here but cannot be sent. "
                         "Call the school office.", "device_unauthorized",
                         {"problem": f.auth_problem}))
    if f.clock_behind is not None:
        out.append(Alert("problem", "clock_behind",
                         f"This terminal's clock is behind: it shows {f.clock_shows}, but "
                         f"this terminal has already seen {f.clock_behind}. Sales are refused "
                         "until the date and time are set right and the terminal syncs.",
                         "clock_behind", {"shows": f.clock_shows, "known": f.clock_behind}))
    if f.unreviewed:
        what = "sale was" if f.unreviewed == 1 else "sales were"
        out.append(Alert("problem", "sales_need_review",
                         f"{f.unreviewed} {what} rejected or in conflict on the server. "
                         "Open History (F4) to see them.",
                         "sales_need_review_one" if f.unreviewed == 1 else "sales_need_review",
                         {"count": str(f.unreviewed)}))
    cap = f.offline_max_unsynced_total
    if cap > 0 and f.unanswered_total >= NEARLY * cap:
        waiting = format_minor(f.unanswered_total, f.currency)
        limit = format_minor(cap, f.currency)
        out.append(Alert("problem", "offline_total_nearly",
                         f"Offline limit nearly reached: {waiting} waiting to sync, "
                         f"the limit is {limit}. Connect the terminal to the network.",
                         "offline_total_nearly", {"waiting": waiting, "cap": limit}))
    hours = f.hours_since_sync
    if f.offline_max_hours > 0 and hours is not None and hours >= NEARLY * f.offline_max_hours:
        out.append(Alert("problem", "offline_hours_nearly",
                         f"Not synced for {int(hours)} hours; selling stops after "
                         f"{f.offline_max_hours} hours. Connect the terminal to the network.",
                         "offline_hours_nearly",
                         {"hours": str(int(hours)), "limit": str(f.offline_max_hours)}))
    if f.auth_problem is None and f.ever_contacted and not f.server_reachable:
        out.append(Alert("warning", "offline",
                         "Offline: the server cannot be reached. Sales are saved on this "
                         "terminal and will be sent automatically.", "offline"))
    return out
