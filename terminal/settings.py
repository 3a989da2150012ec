"""This terminal's own settings and every default of the terminal, each declared once.

Two kinds live here. Timing defaults (how often the cashier app syncs, how it backs off from
an unreachable server) used to be written out in the app, the main window, the sync worker and
the backoff class, with four different values; now those places import them from here.
:class:`LocalSettings` are per terminal, chosen at its counter (language, sound) and kept in
its SQLite file, never sent to the server.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

# Seconds between two sync cycles of the cashier app while the server answers. 15 s keeps a
# top-up or a blocked bracelet at most that far behind, at one small request per till.
SYNC_INTERVAL_S = 15.0
# Retry delays while the server is unreachable: full jitter up to base * 2**n, at most cap.
BACKOFF_BASE_S = 2.0
BACKOFF_CAP_S = 60.0
# While the till holds the server's event stream (GET /api/v1/sync/events), every change of
# the school's snapshot arrives as an event within a second, so the 15 s poll is replaced by
# this long one. It is a safety net only: it catches what an event cannot say (a server
# restored from a backup lowers acked_seq, which only a push answer tells) and a stream that
# looks open but no longer delivers.
STREAM_SAFETY_POLL_S = 120.0
# The server sends ": ping" every 15 s; a stream silent for a bit over two pings is dead
# (a cable pulled, a NAT entry dropped) even though no error ever arrives, so the read gives up.
STREAM_READ_TIMEOUT_S = 35.0
# Event-driven pulls are at least this far apart: a burst of top-ups (a class paid at once)
# becomes a few pulls, not one per event.
STREAM_MIN_PULL_GAP_S = 0.2
# A stream that stayed up at least this long was a good connection: the next drop starts the
# backoff afresh. One that ends sooner (a proxy closing it at once) keeps the backoff growing,
# so a till never reconnects in a tight loop.
STREAM_STABLE_S = 30.0

LANGUAGES = ("en", "ar")
DEFAULT_LANGUAGE = "en"
DEFAULT_SOUND_VOLUME = 70      # 0 to 100: loud enough over a queue, not startling
DEFAULT_SOUND_MUTED = False


@dataclass(frozen=True, slots=True)
class LocalSettings:
    language: str = DEFAULT_LANGUAGE     # one of LANGUAGES: the language the cashier app speaks
    sound_volume: int = DEFAULT_SOUND_VOLUME
    sound_muted: bool = DEFAULT_SOUND_MUTED


def validated(current: LocalSettings, changes: dict[str, Any]) -> LocalSettings:
    """``current`` with ``changes`` applied, or ``ValueError`` in words a person reads."""
    known = {f.name for f in fields(LocalSettings)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ValueError(f"unknown setting: {', '.join(unknown)}")
    if "language" in changes and changes["language"] not in LANGUAGES:
        raise ValueError("language must be 'en' (English) or 'ar' (Arabic)")
    if "sound_volume" in changes:
        volume = changes["sound_volume"]
        if isinstance(volume, bool) or not isinstance(volume, int) or not 0 <= volume <= 100:
            raise ValueError("sound volume must be a whole number from 0 to 100")
    if "sound_muted" in changes and not isinstance(changes["sound_muted"], bool):
        raise ValueError("sound muted must be yes or no (true or false)")
    return replace(current, **changes)


def to_text(settings: LocalSettings) -> dict[str, str]:
    """How each setting is stored in the ``local_settings`` table (text values)."""
    return {"language": settings.language, "sound_volume": str(settings.sound_volume),
            "sound_muted": "1" if settings.sound_muted else "0"}


def from_text(stored: dict[str, str | None]) -> LocalSettings:
    """The stored values; a value missing or unreadable (a hand-edited file) is the default."""
    default = LocalSettings()
    language = stored.get("language")
    volume_text = stored.get("sound_volume") or ""
    volume = int(volume_text) if volume_text.isdigit() else default.sound_volume
    muted = stored.get("sound_muted")
    return LocalSettings(
        language=language if language in LANGUAGES else default.language,
        sound_volume=volume if 0 <= volume <= 100 else default.sound_volume,
        sound_muted=default.sound_muted if muted is None else muted == "1")
