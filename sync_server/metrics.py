"""``GET /metrics``: what a school's monitoring scrapes, in Prometheus text format.

Two kinds of numbers, kept apart on purpose:

* Events the server counts as they happen (pushes, sales by status, push latency, webhook
  events by type and outcome) live in prometheus-client counters of this process. With
  ``--workers N`` every worker counts its own requests; ``cli._serve`` then sets
  ``PROMETHEUS_MULTIPROC_DIR`` before this module is imported, so the values go to files all
  workers share and any worker's scrape sums them (prometheus-client's multiprocess mode).
* Facts of the database (device lag, unaccounted seqs, payments pending) are read from the
  database at scrape time, so they are the same whichever worker answers and survive restarts.

Per-device series are bounded: only active devices, at most :data:`MAX_DEVICE_SERIES` of them
(those heard from longest ago first: the ones worth an alert); a school has a few tills.
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Iterable, Iterator
from datetime import datetime

import sqlalchemy as sa
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from shared.clock import utcnow

from .api.problems import ProblemError
from .keys import config_key, engine_key
from .storage.schema import device_seqs, devices, payment_events, payments

MAX_DEVICE_SERIES = 500

# ``registry=None`` keeps them out of the global default registry, so tests that build many
# apps and a multiprocess scrape both see one set; EVENTS is what a scrape reads.
EVENTS = CollectorRegistry(auto_describe=True)
PUSHES = Counter("pos_pushes", "sales pushes answered, by HTTP status", ["status"],
                 registry=EVENTS)
SALES = Counter("pos_sales", "sales judged in pushes, by result status", ["status"],
                registry=EVENTS)
PUSH_SECONDS = Histogram("pos_push_duration_seconds", "time to judge and store one push",
                         buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                         registry=EVENTS)
WEBHOOK_EVENTS = Counter("pos_webhook_events", "payment webhook events, by type and outcome",
                         ["event_type", "outcome"], registry=EVENTS)
SSE_STREAMS = Gauge("pos_sse_streams_open", "server-sent event streams open (one per "
                    "connected terminal)", registry=EVENTS, multiprocess_mode="livesum")
SSE_EVENTS = Counter("pos_sse_events_sent", "snapshot events sent on event streams",
                     registry=EVENTS)
SNAPSHOT_DELTAS = Counter("pos_snapshot_deltas", "snapshot deltas answered through the per-process "
                          "delta cache, by source: read (from the database), kept (a kept "
                          "delta), joined (waited for another pull's read)", ["source"],
                          registry=EVENTS)
OUTBOUND_WEBHOOKS = Counter("pos_outbound_webhook_tries", "outbound webhook tries, by event "
                            "type and outcome (delivered, retry, failed)",
                            ["event_type", "outcome"], registry=EVENTS)
OUTBOUND_EMAILS = Counter("pos_outbound_email_tries", "email sending tries, by kind and outcome "
                          "(sent, retry, failed)", ["kind", "outcome"], registry=EVENTS)

def count_push(results: Iterable[dict[str, object]], seconds: float) -> None:
    PUSHES.labels("200").inc()
    PUSH_SECONDS.observe(seconds)
    for result in results:
        SALES.labels(str(result.get("status", "unknown"))).inc()


def count_refused_push(status: int) -> None:
    PUSHES.labels(str(status)).inc()


def count_webhook(event_type: str | None, outcome: str) -> None:
    """``event_type`` is a known type (validated), ``other`` or None (unreadable): the label
    set stays small whatever a gateway sends."""
    WEBHOOK_EVENTS.labels(event_type or "unreadable", outcome).inc()


def count_outbound_webhook(event_type: str, outcome: str) -> None:
    """``event_type`` is one of notify.outbox.EVENT_TYPES (or webhook.test): a small set."""
    OUTBOUND_WEBHOOKS.labels(event_type, outcome).inc()


def count_outbound_email(kind: str, outcome: str) -> None:
    """``kind`` is one of outbound_emails' kinds (low_balance, password_reset): a small set."""
    OUTBOUND_EMAILS.labels(kind, outcome).inc()


def allowed(remote: str | None, allow: str) -> bool:
    """Is ``remote`` inside one of the comma-separated networks of ``metrics_allow``?"""
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote.split("%")[0])
    except ValueError:
        return False
    for item in allow.split(","):
        item = item.strip()
        if item and address in ipaddress.ip_network(item, strict=False):
            return True
    return False


async def metrics(request: web.Request) -> web.Response:
    config = request.app[config_key]
    if not allowed(request.remote, config.metrics_allow):
        # 403 rather than 404: whoever set up monitoring learns at once which setting to
        # change; the numbers themselves say nothing about a student.
        raise ProblemError(403, "metrics-not-allowed", "Metrics not served to this address",
                           "add the scraper's network to metrics_allow (POS_METRICS_ALLOW)")
    facts = await _database_facts(request.app)
    body = generate_latest(_events_registry()) + generate_latest(_Static(facts))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _events_registry() -> CollectorRegistry:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return EVENTS
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


class _Static:
    """A one-scrape collector of families already read from the database."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


async def _database_facts(app: web.Application) -> list[Metric]:
    now = utcnow()
    unaccounted = (sa.select(sa.func.count()).select_from(device_seqs)
                   .where(device_seqs.c.device_id == devices.c.device_id,
                          device_seqs.c.seq > devices.c.acked_seq)
                   .scalar_subquery())
    lag = GaugeMetricFamily("pos_device_last_contact_age_seconds",
                            "seconds since an active device was last heard from "
                            "(absent: never contacted)", labels=["device_id", "school_id"])
    missing = GaugeMetricFamily("pos_device_missing_seqs",
                                "seqs below a device's highest that the server has not stored",
                                labels=["device_id", "school_id"])
    unacked = GaugeMetricFamily("pos_device_unacked_seqs",
                                "seqs above a device's acked_seq (stored or not)",
                                labels=["device_id", "school_id"])
    total_missing = 0
    async with app[engine_key].connect() as conn:
        rows = (await conn.execute(
            sa.select(devices.c.device_id, devices.c.school_id, devices.c.last_seen_at,
                      devices.c.acked_seq, devices.c.max_seq, unaccounted.label("stored"))
            .where(devices.c.status == "active")
            .order_by(devices.c.last_seen_at.asc().nulls_first(), devices.c.device_id)
            .limit(MAX_DEVICE_SERIES))).all()
        at_gateway = (await conn.execute(
            sa.select(sa.func.count()).select_from(payments)
            .where(payments.c.state == "pending"))).scalar_one()
        held = (await conn.execute(
            sa.select(sa.func.count()).select_from(payment_events)
            .where(payment_events.c.status == "held",
                   payment_events.c.reviewed_at.is_(None)))).scalar_one()
    for row in rows:
        labels = [row.device_id, row.school_id]
        if row.last_seen_at is not None:
            lag.add_metric(labels, _age(now, row.last_seen_at))
        gap = max(0, int(row.max_seq) - int(row.acked_seq) - int(row.stored))
        total_missing += gap
        missing.add_metric(labels, gap)
        unacked.add_metric(labels, max(0, int(row.max_seq) - int(row.acked_seq)))
    all_missing = GaugeMetricFamily("pos_missing_seqs", "missing seqs over all active devices",
                                    value=total_missing)
    pending = GaugeMetricFamily("pos_payments_pending",
                                "payments waiting: state=pending at the gateway, state=held "
                                "for an admin's review", labels=["state"])
    pending.add_metric(["pending"], int(at_gateway))
    pending.add_metric(["held"], int(held))
    return [lag, missing, unacked, all_missing, pending]


def _age(now: datetime, then: datetime) -> float:
    if then.tzinfo is None:
        then = then.replace(tzinfo=now.tzinfo)
    return max(0.0, (now - then).total_seconds())


def setup_metrics(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)


class Timer:
    """``with Timer() as t: ...; t.seconds``."""

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
