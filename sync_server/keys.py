"""Every typed application key of the aiohttp app, in one place (aiohttp demos' habit)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from .config import ServerConfig
from .events.hub import ChangeHub
from .events.pg_listener import ChangeListener
from .presence import Presence
from .ratelimit import FailureLimiter
from .snapshot import DeltaCache
from .storage.writer_lock import WriterLock

config_key = web.AppKey("config", ServerConfig)
engine_key = web.AppKey("engine", AsyncEngine)
dialect_key = web.AppKey("dialect", str)
# SQLite allows one writer; queueing writers beats spinning on busy_timeout.
write_lock_key = web.AppKey("write_lock", WriterLock)
enroll_limiter_key = web.AppKey("enroll_limiter", FailureLimiter)
# Terminals' last contact, noted in memory and written in batches (sync_server.presence).
presence_key = web.AppKey("presence", Presence)
# Small snapshot deltas this process read lately (sync_server.snapshot.DeltaCache).
delta_cache_key = web.AppKey("delta_cache", DeltaCache)
# HMAC key of values the server signs (sync_server.signing); set when the app starts.
signing_key_key = web.AppKey("signing_key", bytes)
# Server-sent event streams of this process (sync_server.events); the listener on PostgreSQL.
events_hub_key = web.AppKey("events_hub", ChangeHub)
events_listener_key = web.AppKey("events_listener", ChangeListener)
