"""Two connections writing one till file at once: the UI thread's sale and the sync thread.

A DEFERRED transaction that reads first and writes later fails at once with "database is
locked" when the other connection commits in between (SQLite cannot upgrade a stale WAL
snapshot, and busy_timeout does not apply). That killed the sync thread under load, so every
store write now begins IMMEDIATE (:func:`terminal.store.db.writing`), and the sync worker
survives a cycle that fails in a way nobody expected.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from terminal.core import Terminal
from terminal.store.db import open_database, writing
from terminal.sync.backoff import Backoff
from terminal.sync.cycle import SyncReport
from terminal.sync.worker import SyncWorker


def _other_writer(path: Path, started: threading.Event, done: threading.Event,
                  errors: list[BaseException]) -> None:
    other = open_database(path)
    try:
        started.set()
        with writing(other):
            other.conn.execute("INSERT INTO local_settings (key, value) VALUES ('probe', 'b')")
    except BaseException as exc:  # reported to the test
        errors.append(exc)
    finally:
        other.conn.close()
        done.set()


def _read_then_write(path: Path, begin: str) -> list[BaseException]:
    """Read, let another connection commit a write, then write: as store_results does."""
    db = open_database(path)
    errors: list[BaseException] = []
    started, done = threading.Event(), threading.Event()
    try:
        db.conn.execute(begin)
        db.conn.execute("SELECT count(*) FROM outbox").fetchone()
        threading.Thread(target=_other_writer, args=(path, started, done, errors)).start()
        started.wait(5)
        done.wait(0.5)  # IMMEDIATE: the other writer is still waiting for our lock
        try:
            db.conn.execute("INSERT INTO local_settings (key, value) VALUES ('probe2', 'a')")
            db.conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            errors.append(exc)
            db.conn.execute("ROLLBACK")
        done.wait(15)
    finally:
        db.conn.close()
    return errors


def test_a_deferred_read_then_write_fails_when_the_other_connection_commits_between(
        tmp_path: Path) -> None:
    """The hazard itself, so the next test is known to test something."""
    open_database(tmp_path).conn.close()
    errors = _read_then_write(tmp_path, "BEGIN")
    assert any("locked" in str(e) for e in errors), errors


def test_writing_takes_the_lock_first_so_both_writers_get_through(tmp_path: Path) -> None:
    open_database(tmp_path).conn.close()
    errors = _read_then_write(tmp_path, "BEGIN IMMEDIATE")
    assert errors == []
    db = open_database(tmp_path)
    keys = {r[0] for r in db.conn.execute("SELECT key FROM local_settings")}
    assert {"probe", "probe2"} <= keys


class _FailsOnce(Terminal):
    """The real core whose first sync cycle fails in a way the cycle does not expect."""

    calls = 0

    def sync_once(self, *, pull_only: bool = False, push_only: bool = False) -> SyncReport:
        type(self).calls += 1
        if type(self).calls == 1:
            raise sqlite3.OperationalError("database is locked")
        return SyncReport(completed=True)


def test_the_sync_thread_survives_an_unexpected_error(tmp_path: Path) -> None:
    term = _FailsOnce(tmp_path)
    reports: list[SyncReport] = []
    worker = SyncWorker(term, interval=60, stream=False, on_report=reports.append,
                        backoff=Backoff(base=0.05, cap=0.1))
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while len(reports) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.stop(5)
    assert reports[0].unreachable and "OperationalError" in (reports[0].error or "")
    assert reports[1].completed, "the thread went on to the next cycle"


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
