"""The server's signing key: HMAC over values the server hands out and must recognise later.

Used for the login form's CSRF cookie (a value the server minted, not one a neighbouring site
planted) and to key the lockout's record of emails that name no account. The key is
``POS_SIGNING_SECRET`` when configured; otherwise one is generated on first start and kept in
the database (``server_secrets``), so every worker process and host signs alike with nothing
to set up. Whoever can read the database can then forge a login-form cookie, which gains them
nothing the database did not already give; setting the secret keeps it out of the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import utcnow

from .storage.schema import server_secrets

KEY_ROW = "signing_key"  # the name of its row in server_secrets


async def load_signing_key(engine: AsyncEngine, configured: str | None) -> bytes:
    """The configured secret, else the one in the database, made now if there is none yet.
    Two processes starting at once both insert; the loser's insert fails and it reads the
    winner's key."""
    if configured:
        return configured.encode()
    for _ in range(2):
        async with engine.connect() as conn:
            stored = (await conn.execute(sa.select(server_secrets.c.value).where(
                server_secrets.c.name == KEY_ROW))).scalar_one_or_none()
        if stored is not None:
            return str(stored).encode()
        try:
            async with engine.begin() as conn:
                await conn.execute(sa.insert(server_secrets).values(
                    name=KEY_ROW, value=secrets.token_urlsafe(32), created_at=utcnow()))
        except sa.exc.IntegrityError:
            pass
    raise RuntimeError("could not store or read the signing key in server_secrets")


def sign(key: bytes, purpose: str, message: str) -> str:
    """URL-safe HMAC-SHA256 of ``message``; ``purpose`` keeps one use's signatures from
    passing as another's."""
    mac = hmac.new(key, f"{purpose}\x00{message}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def signed_by(key: bytes, purpose: str, message: str, signature: str) -> bool:
    if not signature.isascii():  # a cookie may hold any bytes; a signature is never one of them
        return False
    return hmac.compare_digest(sign(key, purpose, message).encode(), signature.encode())
