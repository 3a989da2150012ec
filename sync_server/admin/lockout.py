"""The admin login lockout: limits an attacker cannot turn against the real admin.

Counted in the database (``login_attempts``), so every worker process and host shares one
count. Within any 15 minutes:

- **per (account, address)**: 5 failures, then that account waits, from that address only.
  Five wrong passwords typed at the school's network no longer lock the admin out at home.
- **backstops** against guessing spread wide: 20 failures from one address over all accounts
  (trying many emails), 50 for one account from all addresses (many addresses, one account),
  200 over the whole server. Past a backstop an attempt is refused *unless* its account
  signed in successfully from its address in the last 90 days: the attacker's addresses are
  new, the admin's usual one is not, so an attack spread over many addresses slows strangers
  down without locking out the people it targets.

Only attempts that reached a password check are counted (a refused attempt costs nothing and
extends nothing). An email that names no account is limited exactly like one that does, by a
keyed hash of it, so the lockout does not reveal which emails exist, and the typed text is not
stored. The count and the insert are not one atomic step: two processes racing may each let
one more attempt through, which changes nothing about what guessing can achieve.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..signing import sign
from ..storage.schema import login_attempts

WINDOW = timedelta(minutes=15)
PAIR_LIMIT = 5
ADDRESS_LIMIT = 20
ACCOUNT_LIMIT = 50
GLOBAL_LIMIT = 200
KNOWN_ADDRESS_FOR = timedelta(days=90)
KEEP_FAILURES = timedelta(days=30)

_a = login_attempts.c


def address_key(remote: str | None) -> str:
    """The address an attempt is counted under: an IPv4 address as it is, an IPv6 address cut
    to its /64 (one subscriber holds a whole /64 and could otherwise change address per
    guess)."""
    try:
        ip = ipaddress.ip_address(remote or "")
    except ValueError:
        return (remote or "unknown")[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


def account_key(signing_key: bytes, user_id: str | None, email: str) -> str:
    """The user's ID, or for an email naming no account ``anon:`` and a keyed hash of it."""
    if user_id is not None:
        return user_id
    typed = email.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
    return "anon:" + sign(signing_key, "login-account", typed)[:40]


def _nth_latest_failure(n: int, since: datetime,
                        *where: sa.ColumnElement[bool]) -> sa.ScalarSelect[datetime]:
    """When the n-th most recent failure matching ``where`` happened (NULL when there are
    fewer than n in the window): the limit holds until it leaves the window."""
    return (sa.select(_a.at).where(~_a.succeeded, _a.at > since, *where)
            .order_by(_a.at.desc()).offset(n - 1).limit(1).scalar_subquery())


async def retry_after(conn: AsyncConnection, account: str, address: str,
                      now: datetime) -> int | None:
    """Seconds this account must wait before trying again from this address, or None."""
    since = now - WINDOW
    known = sa.exists().where(_a.account == account, _a.address == address, _a.succeeded,
                              _a.at > now - KNOWN_ADDRESS_FOR)
    row = (await conn.execute(sa.select(
        _nth_latest_failure(PAIR_LIMIT, since, _a.account == account, _a.address == address),
        _nth_latest_failure(ADDRESS_LIMIT, since, _a.address == address),
        _nth_latest_failure(ACCOUNT_LIMIT, since, _a.account == account),
        _nth_latest_failure(GLOBAL_LIMIT, since),
        known))).one()
    pair, *backstops, is_known = row
    binding = [pair] + ([] if is_known else backstops)
    waits = [(at + WINDOW - now).total_seconds() for at in binding if at is not None]
    return max(1, math.ceil(max(waits))) if waits else None


async def record(conn: AsyncConnection, account: str, address: str, now: datetime, *,
                 succeeded: bool) -> None:
    """One attempt that reached the password check; failures older than 30 days and
    successes older than 90 are forgotten on the way (an indexed delete of the few rows that
    just aged out)."""
    await conn.execute(sa.insert(login_attempts).values(
        account=account, address=address, at=now, succeeded=succeeded))
    if succeeded:
        await conn.execute(sa.delete(login_attempts).where(_a.at < now - KNOWN_ADDRESS_FOR))
    else:
        await conn.execute(sa.delete(login_attempts).where(_a.at < now - KEEP_FAILURES,
                                                           ~_a.succeeded))


@dataclass(frozen=True)
class Missed:
    """Failed attempts on an account since its previous successful sign-in."""

    count: int
    last_address: str
    last_at: datetime


async def missed_since_last_login(conn: AsyncConnection, user_id: str,
                                  now: datetime) -> Missed | None:
    """Failures on ``user_id``'s account since its last successful sign-in (or in the last 30
    days when none is remembered); call it before recording the sign-in in progress."""
    last_login = (await conn.execute(sa.select(sa.func.max(_a.at)).where(
        _a.account == user_id, _a.succeeded))).scalar_one_or_none()
    since = last_login or now - KEEP_FAILURES
    failed = sa.and_(_a.account == user_id, ~_a.succeeded, _a.at > since)
    count = (await conn.execute(sa.select(sa.func.count()).where(failed))).scalar_one()
    if not count:
        return None
    last = (await conn.execute(sa.select(_a.address, _a.at).where(failed)
                               .order_by(_a.at.desc(), _a.attempt_id.desc()).limit(1))).one()
    return Missed(count=count, last_address=last.address, last_at=last.at)


def failures_by_source(since: datetime, accounts: sa.ColumnElement[bool]) -> sa.Select[
        tuple[str, str, int, datetime]]:
    """Failures since ``since`` per (account, address), newest first, for accounts matching
    ``accounts``: what the console shows an admin."""
    return (sa.select(_a.account, _a.address, sa.func.count().label("failures"),
                      sa.func.max(_a.at).label("last_at"))
            .where(~_a.succeeded, _a.at > since, accounts)
            .group_by(_a.account, _a.address)
            .order_by(sa.func.max(_a.at).desc()))
