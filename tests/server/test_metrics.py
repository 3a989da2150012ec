"""``GET /metrics`` against the real app and database: counters move by what happened, the
database facts (lag, missing seqs, payments pending) are read at scrape time, and only the
allowed networks are served."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from sync_server.app import create_app
from sync_server.config import ServerConfig
from tests.admin.test_webhook import deliver, event

from .helpers import enroll, push, sale


async def scrape(client: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = await client.get("/metrics")
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    text = await resp.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_counters_and_database_facts_move_with_pushes_and_webhooks(
        client: Any, demo: dict[str, Any]) -> None:
    school = demo["schools"][0]
    device = await enroll(client, school["enrollment_code"])
    dev = {"device_id": device["device_id"], "school_id": school["school_id"]}
    before = await scrape(client)
    assert value(before, "pos_sse_streams_open") == 0

    # seqs 1 and 3 (2 never arrives); then a replay of seq 1: 2 applied, 1 duplicate.
    first = [sale(school, 1), sale(school, 3, wallet=2)]
    await push(client, device["device_token"], first)
    answer = await push(client, device["device_token"], first[:1])
    assert answer["missing_seqs"] == [2]
    # A top-up above the hold threshold is held: one payment pending review.
    wallet = school["wallets"][3]["wallet_id"]
    resp = await deliver(client, event(wallet, "evt_m1", amount=5000))
    assert resp.status == 200, await resp.text()
    resp = await deliver(client, event(wallet, "evt_m2", amount=900_000))
    assert resp.status == 202, await resp.text()
    resp = await deliver(client, event(wallet, "evt_m4", kind="payment.new_kind_2027"))
    assert resp.status == 200 and (await resp.json())["status"] == "ignored"
    resp = await deliver(client, event(wallet, "evt_m3"), signature="sha256=00")
    assert resp.status == 401

    await push(client, "not-a-token", [sale(school, 4)], expect=401)
    await push(client, device["device_token"], [{"ref": "x"}], expect=422)

    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("pos_pushes_total", status="200") == 2
    assert moved("pos_pushes_total", status="401") == 1
    assert moved("pos_pushes_total", status="422") == 1
    assert moved("pos_sales_total", status="applied") == 2
    assert moved("pos_sales_total", status="duplicate") == 1
    assert moved("pos_push_duration_seconds_count") == 2
    assert moved("pos_webhook_events_total", event_type="payment.completed",
                 outcome="credited") == 1
    assert moved("pos_webhook_events_total", event_type="payment.completed",
                 outcome="held") == 1
    assert moved("pos_webhook_events_total", event_type="other", outcome="ignored") == 1
    assert not any("new_kind" in v for _, labels in after for _, v in labels)
    assert moved("pos_webhook_events_total", event_type="unreadable",
                 outcome="bad_signature") == 1
    assert value(after, "pos_device_missing_seqs", **dev) == 1
    assert value(after, "pos_device_unacked_seqs", **dev) == 2  # acked_seq 1, max 3
    assert value(after, "pos_missing_seqs") >= 1
    assert 0 <= value(after, "pos_device_last_contact_age_seconds", **dev) < 60
    assert value(after, "pos_payments_pending", state="held") == 1 + value(
        before, "pos_payments_pending", state="held")


async def test_an_address_outside_metrics_allow_is_refused(
        aiohttp_client: Any, server_config: ServerConfig) -> None:
    client = await aiohttp_client(create_app(replace(server_config,
                                                     metrics_allow="10.0.0.0/8")))
    resp = await client.get("/metrics")
    assert resp.status == 403
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    body = await resp.json()
    assert "metrics_allow" in body["detail"]
    assert "pos_pushes" not in await resp.text()
