"""Completeness of a device's stream: ``acked_seq`` and ``missing_seqs`` from stored seqs."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..storage.schema import device_seqs

MISSING_LIMIT = 100


def advance(acked: int, present_above: Iterable[int]) -> tuple[int, list[int]]:
    """Given the old ``acked_seq`` and every stored seq above it (ascending), return the new
    ``acked_seq`` and the first gaps below the highest seq. Walks only what is stored, so a
    terminal that jumps to seq 10**15 cannot make the server enumerate the gap."""
    missing: list[int] = []
    expected = acked + 1
    for seq in present_above:
        if seq < expected:
            continue
        if seq == expected and not missing:
            acked = seq
        elif seq > expected:
            missing.extend(range(expected, min(seq, expected + MISSING_LIMIT - len(missing))))
        expected = seq + 1
        if len(missing) >= MISSING_LIMIT:
            break
    return acked, missing[:MISSING_LIMIT]


async def stored_above(conn: AsyncConnection, device_id: str, acked: int) -> list[int]:
    rows = await conn.execute(
        sa.select(device_seqs.c.seq)
        .where(device_seqs.c.device_id == device_id, device_seqs.c.seq > acked)
        .order_by(device_seqs.c.seq)
    )
    return [int(r[0]) for r in rows]


async def missing_for(conn: AsyncConnection, device_id: str, acked: int) -> list[int]:
    return advance(acked, await stored_above(conn, device_id, acked))[1]
