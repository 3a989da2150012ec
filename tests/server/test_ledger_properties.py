"""Property test: random interleavings of sales, voids, replays and conflicting replays from
several devices of two schools, pushed through the real HTTP app. After every push:

- the sum of all postings is zero per school, and each transaction balances;
- every wallet's balance equals the sum of its postings;
- each ref is posted at most once;
- every (ref, content) ever sent has exactly one stored outcome;
- each result's status matches a reference model of the protocol (applied/rejected for a new
  ref, duplicate for identical content, conflict for new content under a used ref).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.protocol import Sale
from sync_server.app import create_app
from sync_server.config import ServerConfig
from sync_server.ledger.audit import audit
from sync_server.ledger.judge import content_hash
from sync_server.records import create_enrollment_code
from sync_server.storage.engine import create_engine
from sync_server.storage.schema import sale_conflicts, sales

from .helpers import auth, sale, void_of

# (device index, actions); devices 0 and 1 belong to school A, device 2 to school B.
Action = tuple[str, int, int, int]
action = st.one_of(
    st.tuples(st.just("new"), st.integers(0, 4), st.integers(0, 9), st.integers(1, 12)),
    st.tuples(st.just("void"), st.integers(0, 50), st.just(0), st.just(0)),
    st.tuples(st.just("replay"), st.integers(0, 50), st.just(0), st.just(0)),
    st.tuples(st.just("conflict"), st.integers(0, 50), st.integers(1, 5), st.just(0)),
)
program = st.lists(st.tuples(st.integers(0, 2), st.lists(action, min_size=0, max_size=6)),
                   min_size=1, max_size=8)


@dataclass
class Model:
    """Refs are unique per school, so the model keys everything by (school, ref)."""

    first: dict[tuple[str, str], str] = field(default_factory=dict)  # -> hash of first content
    conflicts: set[tuple[str, str, str]] = field(default_factory=set)
    sent: set[tuple[str, str, str]] = field(default_factory=set)


def _school_of(device: int) -> int:
    return 0 if device < 2 else 1


def _build(demo: dict[str, Any], device: int, actions: list[Action], history: list[dict[str, Any]],
           seqs: list[int]) -> list[dict[str, Any]]:
    school = demo["schools"][_school_of(device)]
    other = demo["schools"][1 - _school_of(device)]
    batch = []
    for kind, a, b, c in actions:
        if kind == "new":
            seqs[device] += 1
            if a == 4:  # a wallet of the other school: must be rejected, no money moves
                body = sale(school, seqs[device], wallet=1, items=(b,), qty=c,
                            wallet_id=other["wallets"][1]["wallet_id"], uid=None)
            else:
                body = sale(school, seqs[device], wallet=a, items=(b,), qty=c)
            history.append(body)
            batch.append(body)
        elif history:
            target = history[a % len(history)]
            if kind == "void":
                seqs[device] += 1
                body = void_of(target, seqs[device])
                history.append(body)
                batch.append(body)
            elif kind == "replay":
                batch.append(target)
            else:
                changed = dict(target, lines=[dict(target["lines"][0],
                                                   quantity=target["lines"][0]["quantity"] + b)])
                changed["total"] = sum(ln["quantity"] * ln["unit_price"] for ln in changed["lines"])
                batch.append(changed)
    return batch


async def _check_invariants(engine: AsyncEngine, model: Model) -> None:
    report = await audit(engine)
    assert report["ok"], report
    async with engine.connect() as conn:
        primary = {(r.school_id, r.ref, r.content_hash) for r in await conn.execute(
            sa.select(sales.c.school_id, sales.c.ref, sales.c.content_hash))}
        conflict_rows = [(r.school_id, r.ref, r.content_hash) for r in await conn.execute(
            sa.select(sale_conflicts.c.school_id, sale_conflicts.c.ref,
                      sale_conflicts.c.content_hash))]
    assert len(conflict_rows) == len(set(conflict_rows))
    stored = primary | set(conflict_rows)
    assert not primary & set(conflict_rows)
    assert model.sent == stored  # every sent (ref, content) stored exactly once, nothing else


async def _run(db_url: str, demo: dict[str, Any], steps: list[tuple[int, list[Action]]]) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    config = ServerConfig(db_url=db_url)
    engine = create_engine(db_url)
    async with TestClient(TestServer(create_app(config))) as client:
        tokens = []
        for device in range(3):
            school_id = demo["schools"][_school_of(device)]["school_id"]
            async with engine.begin() as conn:
                code = await create_enrollment_code(conn, school_id, timedelta(hours=1))
            resp = await client.post("/api/v1/devices/enroll", json={
                "enrollment_code": code, "name": f"D{device}"})
            tokens.append((await resp.json())["device_token"])
        model, history, seqs = Model(), [], [0, 0, 0]
        for device, actions in steps:
            batch = _build(demo, device, actions, history, seqs)
            resp = await client.post("/api/v1/sync/sales", json={"sales": batch},
                                     headers=auth(tokens[device]))
            assert resp.status == 200, await resp.text()
            results = (await resp.json())["results"]
            assert len(results) == len(batch)
            school_id = demo["schools"][_school_of(device)]["school_id"]
            for body, result in zip(batch, results, strict=True):
                digest = content_hash(Sale.model_validate_json(json.dumps(body)))
                key = (school_id, body["ref"])
                if key not in model.first:
                    model.first[key] = digest
                    expected = {"applied", "rejected"}
                elif model.first[key] == digest or (*key, digest) in model.conflicts:
                    expected = {"duplicate"}
                else:
                    model.conflicts.add((*key, digest))
                    expected = {"conflict"}
                assert result["status"] in expected, (body, result)
                model.sent.add((*key, digest))
            await _check_invariants(engine, model)
    await engine.dispose()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=program)
def test_random_interleavings_keep_the_ledger_exact(db_factory: Any,
                                                    steps: list[tuple[int, list[Action]]]) -> None:
    db_url = db_factory.new()  # a fresh database per example
    asyncio.run(_run(db_url, db_factory.demo, steps))
