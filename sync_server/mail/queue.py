"""Putting an email in the queue, inside the caller's transaction.

The sending job reads ``outbound_emails`` later; a mail server that is down means a retry
later, never a failed sale. ``dedupe_key`` is unique in the database ("low_balance:<wallet>:
<school-local day>" is at most once a day per wallet across every process and host).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utcnow
from shared.ids import new_id

from ..insert_once import insert_once
from ..storage.schema import outbound_emails


async def enqueue(conn: AsyncConnection, *, school_id: str | None, kind: str, to_address: str,
                  subject: str, body_text: str, language: str | None = None,
                  dedupe_key: str | None = None) -> str | None:
    """Queue one email; its id, or None when ``dedupe_key`` was already queued."""
    now = utcnow()
    email_id = new_id("eml")
    written = await insert_once(conn, outbound_emails, {
        "email_id": email_id, "school_id": school_id, "kind": kind, "dedupe_key": dedupe_key,
        "to_address": to_address, "subject": subject, "body_text": body_text,
        "language": language, "state": "pending", "attempts": 0, "next_attempt_at": now,
        "created_at": now})
    return email_id if written else None
