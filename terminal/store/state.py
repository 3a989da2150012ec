"""Enrollment and sync bookkeeping: the single-row tables ``device`` and ``sync_state``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from terminal.store.db import writing
from terminal.store.rows import build, fetch_one


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    device_token: str
    school_id: str
    currency: str
    server_url: str
    name: str
    enrolled_at: str

    def __repr__(self) -> str:  # keep the token out of tracebacks and logs
        return f"Device(device_id={self.device_id!r}, school_id={self.school_id!r})"


@dataclass(frozen=True, slots=True)
class SchoolSettings:
    """The school's offline policy as last received. Plain dataclass (not the pydantic wire
    model) so that ``pos-terminal sell`` never pays for importing pydantic."""

    currency: str = "SAR"
    offline_max_sale: int = 0
    offline_max_unsynced_total: int = 0
    offline_max_hours: int = 0
    overdraft_limit: int = 0
    timezone: str = "UTC"

    @classmethod
    def from_json(cls, text: str | None) -> SchoolSettings | None:
        if not text:
            return None
        raw: dict[str, Any] = json.loads(text)
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        return cls(**known)


@dataclass(frozen=True, slots=True)
class SyncState:
    epoch: int
    cursor: str | None
    settings: SchoolSettings | None
    snapshot_at: datetime | None
    last_sync_at: datetime | None
    last_contact_at: datetime | None
    last_contact_ok: bool | None
    last_error: str | None
    auth_problem: str | None
    acked_seq: int
    missing_seqs: list[int]
    server_time: datetime | None = None   # the server's clock at the last complete pull
    synced_seq: int = 0                   # the last seq when the last successful sync ended
    highest_acked_seq: int = 0            # the highest acked_seq since the server last lost any
    refill_from_seq: int | None = None    # re-sending what the server lost above this seq
    pruned_at: datetime | None = None     # when old acknowledged sales were last pruned


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def get_device(db: Database) -> Device | None:
    row = fetch_one(
        db.conn, "SELECT device_id, device_token, school_id, currency, server_url, name,"
        " enrolled_at FROM device WHERE id = 1")
    return build(Device, row) if row else None


def save_device(db: Database, device: Device) -> None:
    with writing(db):
        db.conn.execute(
            "INSERT INTO device (id, device_id, device_token, school_id, currency, server_url,"
            " name, enrolled_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
            (device.device_id, device.device_token, device.school_id, device.currency,
             device.server_url, device.name, device.enrolled_at))


def get_sync_state(db: Database) -> SyncState:
    row = fetch_one(
        db.conn, "SELECT epoch, cursor, settings_json AS settings, snapshot_at, last_sync_at,"
        " last_contact_at, last_contact_ok, last_error, auth_problem, acked_seq,"
        " missing_seqs_json AS missing_seqs, snapshot_server_time AS server_time, synced_seq,"
        " highest_acked_seq, refill_from_seq, pruned_at FROM sync_state WHERE id = 1")
    assert row is not None  # created by the first migration
    return build(SyncState, row, {
        "settings": SchoolSettings.from_json, "snapshot_at": _dt, "last_sync_at": _dt,
        "last_contact_at": _dt, "server_time": _dt, "missing_seqs": json.loads,
        "pruned_at": _dt,
        "last_contact_ok": lambda v: None if v is None else bool(v)})


def record_contact(db: Database, at: datetime, *, ok: bool, error: str | None = None,
                   auth_problem: str | None = None) -> None:
    """Remember whether the server answered. A good answer clears an earlier auth problem
    (an admin may have re-activated the device); a transport failure leaves it as it was."""
    with writing(db):
        if ok:
            db.conn.execute(
                "UPDATE sync_state SET last_contact_at = ?, last_contact_ok = 1,"
                " last_error = NULL, auth_problem = NULL WHERE id = 1", (at.isoformat(),))
        elif auth_problem is not None:
            db.conn.execute(
                "UPDATE sync_state SET last_contact_at = ?, last_contact_ok = 0,"
                " last_error = ?, auth_problem = ? WHERE id = 1",
                (at.isoformat(), error, auth_problem))
        else:
            db.conn.execute(
                "UPDATE sync_state SET last_contact_at = ?, last_contact_ok = 0,"
                " last_error = ? WHERE id = 1", (at.isoformat(), error))


def record_synced(db: Database, at: datetime) -> None:
    """A push and a pull both finished. The server's time just seen now vouches for the
    clock, so the clock check stops looking at the times of sales recorded before this."""
    with writing(db):
        db.conn.execute(
            "UPDATE sync_state SET last_sync_at = ?,"
            " synced_seq = (SELECT last_seq FROM seq_counter WHERE id = 1) WHERE id = 1",
            (at.isoformat(),))


def end_refill(db: Database) -> bool:
    """Every sale held above the refill's start has been re-sent and answered; True if a
    refill was under way."""
    with writing(db):
        ended = db.conn.execute("UPDATE sync_state SET refill_from_seq = NULL"
                                " WHERE id = 1 AND refill_from_seq IS NOT NULL").rowcount
    return bool(ended)


def record_pruned(db: Database, at: datetime) -> None:
    with writing(db):
        db.conn.execute("UPDATE sync_state SET pruned_at = ? WHERE id = 1", (at.isoformat(),))


def next_epoch(db: Database) -> int:
    """Start a snapshot pull: every result learnt before this point is older than the pull."""
    with writing(db):
        db.conn.execute("UPDATE sync_state SET epoch = epoch + 1 WHERE id = 1")
        value: int = db.conn.execute("SELECT epoch FROM sync_state WHERE id = 1").fetchone()[0]
    return value


def current_epoch(db: Database) -> int:
    value: int = db.conn.execute("SELECT epoch FROM sync_state WHERE id = 1").fetchone()[0]
    return value


def get_local_setting(db: Database, key: str) -> str | None:
    row = db.conn.execute("SELECT value FROM local_settings WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def set_local_setting(db: Database, key: str, value: str) -> None:
    with writing(db):
        db.conn.execute(
            "INSERT INTO local_settings (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))
