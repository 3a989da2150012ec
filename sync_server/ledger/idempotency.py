"""The one idempotency rule of every movement of money: sales, payment events, admin operations.

Each business event carries a key (a sale's ``ref``, a gateway ``event_id``, an admin form's
``idem_key``) and a content hash of its *parsed* input. The first time a key is seen, its
outcome is stored in the same transaction as the money, under a unique index on the key; from
then on:

- the same key with the same content is a replay: the stored first outcome is answered again
  and nothing moves;
- the same key with other content is a conflict: nothing moves, and the attempt is kept for a
  person to look at (once per distinct content, so a client retrying its conflict does not
  fill the review queue);
- two deliveries of one key racing on two server processes both try to insert the key row
  before any money moves; the loser's INSERT fails on the unique index, its transaction rolls
  back, and :func:`retrying` runs it again from fresh reads, where it finds the winner's row
  and becomes a replay.

The sales push applies this per sale inside a batch (:mod:`.judge`), the payment webhook per
event (:mod:`.payments`), admin operations per form submission (:mod:`.money_ops`); all three
decide with :func:`verdict` and retry with :func:`retrying`.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Container
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError

log = logging.getLogger(__name__)
T = TypeVar("T")
ATTEMPTS = 5


class Verdict(enum.Enum):
    FIRST = "first"                    # never seen: apply, store the outcome
    REPLAY = "replay"                  # same key, same content: answer the stored outcome
    CONFLICT = "conflict"              # same key, new content: keep it for review
    CONFLICT_REPLAY = "conflict_replay"  # that same conflicting content again: kept already


def verdict(stored_hash: str | None, digest: str, kept_conflicts: Container[str]) -> Verdict:
    """``stored_hash`` is the content hash stored with the key's first outcome (None: the key
    is new); ``kept_conflicts`` the hashes of conflicting contents already kept for it."""
    if stored_hash is None:
        return Verdict.FIRST
    if stored_hash == digest:
        return Verdict.REPLAY
    if digest in kept_conflicts:
        return Verdict.CONFLICT_REPLAY
    return Verdict.CONFLICT


def fingerprint(value: Any) -> str:
    """Content hash of a parsed value (dicts, lists, strings, integers): key order and
    whitespace of the input do not matter, values do. Callers normalise times first."""
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def lost_race(exc: BaseException) -> bool:
    """A failure that running the whole transaction again resolves: a unique key taken by a
    concurrent writer, a deadlock or serialization failure, SQLite's busy lock."""
    if isinstance(exc, IntegrityError):
        return True
    if isinstance(exc, DBAPIError):
        text = str(exc.orig or exc).lower()
        return any(s in text for s in ("deadlock", "could not serialize", "database is locked"))
    return False


async def retrying(attempt: Callable[[], Awaitable[T]], *, what: str,
                   attempts: int = ATTEMPTS) -> T:
    """Run ``attempt`` (one whole transaction) until it commits or fails for another reason
    than a lost race. The last lost race is raised: something is wrong beyond contention."""
    for n in range(1, attempts + 1):
        try:
            return await attempt()
        except DBAPIError as exc:
            if n == attempts or not lost_race(exc):
                raise
            orig = exc.orig if exc.orig is not None else exc
            log.warning("%s retried after %s (attempt %d)", what, type(orig).__name__, n)
            await asyncio.sleep(0.01 * n)
    raise AssertionError("unreachable")
