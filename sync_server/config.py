"""Server settings, declared once with type, default and help (Datasette's habit).

Values come from the environment (``POS_*``) or a TOML file given with ``--config``; command
line flags override both. Secrets never have defaults in source.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from .ledger.payments import Policy


def _meta(env: str, help: str) -> dict[str, str]:
    return {"env": env, "help": help}


@dataclass(frozen=True)
class ServerConfig:
    db_url: str = field(default="sqlite:///pos-server.db",
                        metadata=_meta("POS_DB_URL", "database URL: sqlite:///path or postgresql://"))
    webhook_secret: str | None = field(
        default=None, repr=False,
        metadata=_meta("POS_WEBHOOK_SECRET", "shared secret of the payment gateway's webhook"))
    enrollment_ttl_hours: int = field(
        default=24, metadata=_meta("POS_ENROLLMENT_TTL_HOURS", "hours an enrollment code lives"))
    password_reset_ttl_minutes: int = field(
        default=60,
        metadata=_meta("POS_PASSWORD_RESET_TTL_MINUTES",
                       "minutes a console user's one-time set-password link stays usable"))
    enroll_failures_per_minute: int = field(
        default=10, metadata=_meta("POS_ENROLL_FAILURES_PER_MINUTE",
                                   "failed enrollments per client address per minute before 429"))
    secure_cookies: bool = field(
        default=True,
        metadata=_meta("POS_SECURE_COOKIES",
                       "mark admin cookies Secure, so browsers send them over HTTPS only; "
                       "turn off only where the console is served over plain HTTP (the demo)"))
    signing_secret: str | None = field(
        default=None, repr=False,
        metadata=_meta("POS_SIGNING_SECRET",
                       "key that signs the admin login form's cookie; unset: one is generated "
                       "and kept in the database, shared by every worker and host"))
    trusted_proxies: str | None = field(
        default=None,
        metadata=_meta("POS_TRUSTED_PROXIES",
                       "comma-separated proxy addresses whose X-Forwarded-For is believed; "
                       "then every other peer is refused (health checks excepted)"))
    workers: int = field(
        default=1, metadata=_meta("POS_WORKERS", "server processes; one per core is best"))
    clock_skew_seconds: int = field(
        default=300,
        metadata=_meta("POS_CLOCK_SKEW_SECONDS",
                       "created_at this far ahead is flagged clock_skew (as is one more than "
                       "the school's offline_max_hours behind)"))

    payment_pending_minutes: int = field(
        default=30,
        metadata=_meta("POS_PAYMENT_PENDING_MINUTES",
                       "a payment pending this long is checked with the gateway's status API"))
    payment_hold_above: int = field(
        default=500_000,
        metadata=_meta("POS_PAYMENT_HOLD_ABOVE",
                       "top-ups above this many minor units are held for an admin's review"))
    gateway_url: str | None = field(
        default=None,
        metadata=_meta("POS_GATEWAY_URL",
                       "base URL of the payment gateway's status API (reconciliation is off "
                       "without it)"))
    gateway_api_key: str | None = field(
        default=None, repr=False,
        metadata=_meta("POS_GATEWAY_API_KEY", "credential for the gateway's status API"))

    # Outages and load (sync_server/api/outages.py, sync_server/connections.py).
    retry_after_seconds: int = field(
        default=5,
        metadata=_meta("POS_RETRY_AFTER_SECONDS",
                       "Retry-After of a 503 (database unavailable, server busy)"))
    db_pool_size: int | None = field(
        default=None,
        metadata=_meta("POS_DB_POOL_SIZE",
                       "half the database connections a worker may open: up to twice this "
                       "many open as load needs them and stay open, and as many requests use "
                       "the database at once. Default: 10 on PostgreSQL, 4 on SQLite"))
    max_waiting_requests: int = field(
        default=200,
        metadata=_meta("POS_MAX_WAITING_REQUESTS",
                       "requests per worker that may wait for the database; beyond, 503 at once"))
    queue_timeout_seconds: float = field(
        default=5.0,
        metadata=_meta("POS_QUEUE_TIMEOUT_SECONDS",
                       "a request waiting this long for the database answers 503"))
    header_timeout_seconds: float = field(
        default=15.0,
        metadata=_meta("POS_HEADER_TIMEOUT_SECONDS",
                       "a connection must send a complete request head within this time (also "
                       "how long an idle keep-alive connection stays open)"))
    body_timeout_seconds: float = field(
        default=60.0,
        metadata=_meta("POS_BODY_TIMEOUT_SECONDS",
                       "a request body must arrive within this time, or 408"))
    max_connections: int | None = field(
        default=None,
        metadata=_meta("POS_MAX_CONNECTIONS",
                       "open connections per worker; beyond, the oldest idle one is closed. "
                       "Default and ceiling: what the open-files limit leaves room for"))

    # Watching it (sync_server/metrics.py, sync_server/logs.py, the dashboard's health panel).
    metrics_allow: str = field(
        default="127.0.0.1/32,::1/128",
        metadata=_meta("POS_METRICS_ALLOW",
                       "comma-separated networks (CIDR) that may read /metrics; others get 403"))
    log_format: str = field(
        default="human",
        metadata=_meta("POS_LOG_FORMAT",
                       "human (one readable line) or json (one JSON object a line)"))
    stale_terminal_minutes: int = field(
        default=15,
        metadata=_meta("POS_STALE_TERMINAL_MINUTES",
                       "the dashboard flags an active terminal not heard from this long"))
    presence_flush_seconds: float = field(
        default=60.0,
        metadata=_meta("POS_PRESENCE_FLUSH_SECONDS",
                       "terminals' last contact is kept in memory and written this often, in "
                       "one statement (so the console's last contact lags by up to this)"))

    # Event streams, GET /api/v1/sync/events (sync_server/events/).
    events_ping_seconds: float = field(
        default=15.0,
        metadata=_meta("POS_EVENTS_PING_SECONDS",
                       "an event stream sends a ping comment this often, so proxies keep it "
                       "open (and a closed one is noticed)"))
    events_watch_seconds: float = field(
        default=0.5,
        metadata=_meta("POS_EVENTS_WATCH_SECONDS",
                       "SQLite: while streams are open, each process reads the change "
                       "counters of their schools this often (one read, no writes)"))
    events_recheck_seconds: float = field(
        default=30.0,
        metadata=_meta("POS_EVENTS_RECHECK_SECONDS",
                       "PostgreSQL: streams' schools are read again this often in case a "
                       "notification was lost, and the listening connection is checked"))

    # Outbound webhooks to a school's systems (sync_server/notify/delivery.py).
    webhook_timeout_seconds: float = field(
        default=10.0,
        metadata=_meta("POS_WEBHOOK_TIMEOUT_SECONDS",
                       "an outbound webhook delivery not answered within this time counts "
                       "as failed and is retried"))
    webhook_retry_base_seconds: float = field(
        default=30.0,
        metadata=_meta("POS_WEBHOOK_RETRY_BASE_SECONDS",
                       "shortest wait before retrying a failed outbound webhook delivery; "
                       "the n-th retry waits a random time between this and base x 2^n"))
    webhook_retry_max_seconds: float = field(
        default=3600.0,
        metadata=_meta("POS_WEBHOOK_RETRY_MAX_SECONDS",
                       "longest wait between two tries of an outbound webhook delivery"))
    webhook_max_attempts: int = field(
        default=15,
        metadata=_meta("POS_WEBHOOK_MAX_ATTEMPTS",
                       "tries of an outbound webhook delivery before it is marked failed "
                       "(an admin can redeliver it)"))
    webhook_poll_seconds: float = field(
        default=5.0,
        metadata=_meta("POS_WEBHOOK_POLL_SECONDS",
                       "each server process looks for due outbound webhook deliveries this "
                       "often (one read; nothing is written while none is due)"))
    webhooks_allow_http: bool = field(
        default=False,
        metadata=_meta("POS_WEBHOOKS_ALLOW_HTTP",
                       "accept http:// webhook endpoints on loopback and private addresses "
                       "(tests, a school's own network); otherwise https:// only"))

    # Email to parents and staff (sync_server/mail/sender.py).
    smtp_host: str = field(
        default="",
        metadata=_meta("POS_SMTP_HOST",
                       "mail server that sends parent and staff email; empty: no email is "
                       "sent (it stays queued until one is set)"))
    smtp_port: int = field(
        default=587, metadata=_meta("POS_SMTP_PORT", "the mail server's port"))
    smtp_username: str | None = field(
        default=None,
        metadata=_meta("POS_SMTP_USERNAME", "login at the mail server; unset: no login"))
    smtp_password: str | None = field(
        default=None, repr=False,
        metadata=_meta("POS_SMTP_PASSWORD", "password at the mail server (never logged)"))
    smtp_from: str = field(
        default="",
        metadata=_meta("POS_SMTP_FROM",
                       "From address of the email sent; empty: cafeteria@<smtp_host>"))
    smtp_tls: str = field(
        default="starttls",
        metadata=_meta("POS_SMTP_TLS",
                       "starttls (upgrade a plain connection, port 587), tls (TLS from the "
                       "start, port 465) or none (a relay on the same host or network)"))
    smtp_timeout_seconds: float = field(
        default=30.0,
        metadata=_meta("POS_SMTP_TIMEOUT_SECONDS",
                       "a mail server not done with one email within this time counts as "
                       "failed and the email is retried"))
    mail_poll_seconds: float = field(
        default=10.0,
        metadata=_meta("POS_MAIL_POLL_SECONDS",
                       "each server process looks for due email this often (one read; "
                       "nothing is written while none is due)"))
    mail_max_attempts: int = field(
        default=10,
        metadata=_meta("POS_MAIL_MAX_ATTEMPTS",
                       "tries of one email before it is marked failed"))
    mail_retry_base_seconds: float = field(
        default=60.0,
        metadata=_meta("POS_MAIL_RETRY_BASE_SECONDS",
                       "shortest wait before retrying an email the mail server did not take; "
                       "the n-th retry waits a random time between this and base x 2^n"))
    mail_retry_max_seconds: float = field(
        default=3600.0,
        metadata=_meta("POS_MAIL_RETRY_MAX_SECONDS",
                       "longest wait between two tries of an email"))

    @property
    def payment_policy(self) -> Policy:
        return Policy(hold_above=self.payment_hold_above,
                      check_pending_after=timedelta(minutes=self.payment_pending_minutes))

    @property
    def enrollment_ttl(self) -> timedelta:
        return timedelta(hours=self.enrollment_ttl_hours)

    @property
    def password_reset_ttl(self) -> timedelta:
        return timedelta(minutes=self.password_reset_ttl_minutes)

    @property
    def clock_skew(self) -> timedelta:
        return timedelta(seconds=self.clock_skew_seconds)

    @classmethod
    def load(cls, config_file: str | Path | None = None, **overrides: Any) -> ServerConfig:
        """File, then environment, then explicit overrides (``None`` overrides are ignored)."""
        values: dict[str, Any] = {}
        if config_file:
            with open(config_file, "rb") as fh:
                data = tomllib.load(fh)
            known = {f.name for f in fields(cls)}
            unknown = set(data) - known
            if unknown:
                raise ValueError(f"unknown settings in {config_file}: {', '.join(sorted(unknown))}")
            values.update(data)
        for f in fields(cls):
            raw = os.environ.get(f.metadata["env"])
            if raw is not None and raw != "":
                values[f.name] = _coerce(f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        config = cls(**values)
        if config.workers < 1:
            raise ValueError("workers must be at least 1")
        for name in ("retry_after_seconds", "db_pool_size", "queue_timeout_seconds",
                     "header_timeout_seconds", "body_timeout_seconds", "max_connections",
                     "presence_flush_seconds", "events_ping_seconds", "events_watch_seconds",
                     "events_recheck_seconds", "webhook_timeout_seconds",
                     "webhook_retry_base_seconds", "webhook_retry_max_seconds",
                     "webhook_max_attempts", "webhook_poll_seconds", "smtp_port",
                     "smtp_timeout_seconds", "mail_poll_seconds", "mail_max_attempts",
                     "mail_retry_base_seconds", "mail_retry_max_seconds"):
            value = getattr(config, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive")
        if config.smtp_tls not in ("starttls", "tls", "none"):
            raise ValueError("smtp_tls must be starttls, tls or none")
        if config.log_format not in ("human", "json"):
            raise ValueError("log_format must be human or json")
        if config.stale_terminal_minutes <= 0:
            raise ValueError("stale_terminal_minutes must be positive")
        _check_networks(config.metrics_allow)
        if config.max_waiting_requests < 0:
            raise ValueError("max_waiting_requests must be 0 or more")
        return config


def _check_networks(allow: str) -> None:
    import ipaddress

    for item in allow.split(","):
        if item.strip():
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(f"metrics_allow: {item.strip()!r} is not a network") from None


def _coerce(kind: Any, raw: str) -> Any:
    kind = str(kind)
    if kind.startswith("int"):
        return int(raw)
    if kind.startswith("float"):
        return float(raw)
    if kind.startswith("bool"):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    return raw
