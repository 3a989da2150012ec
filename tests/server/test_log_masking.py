"""Parents' emails and phone numbers never reach a log line in full: in either format, in a
message, its arguments, its ``extra`` fields or a traceback, and in the real ``pos-server
serve`` process's access lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from sync_server import logs
from sync_server.log_masking import mask_contacts

EMAIL = "umm.ahmad@example.org"
PHONE = "+966501234567"


@pytest.mark.parametrize(("raw", "masked"), [
    (f"to {EMAIL}.", "to u***@example.org."),
    (PHONE, "+9665******67"),
    ("call 00966 50 123 4567 now", "call 00966*******67 now"),
    ("local 0501234567", "local 05012***67"),
    ("p***@example.org", "p***@example.org"),  # masked twice: the same
])
def test_masks(raw: str, masked: str) -> None:
    assert mask_contacts(raw) == masked


def test_what_is_not_a_contact_stays_readable() -> None:
    for text in ("2026-11-28T02:47:31+03:00 took 1234.5 ms", "uid 04A1B2C3 and 12345678",
                 "request 0012345678abcdef", "balance -1,205.50 SAR", "version 20261127"):
        assert mask_contacts(text) == text


@pytest.fixture
def root_restored() -> Iterator[None]:
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in saved[0]:
        root.addHandler(h)
    root.setLevel(saved[1])


@pytest.mark.parametrize("fmt", ["human", "json"])
def test_every_part_of_a_record_is_masked(fmt: str, root_restored: None) -> None:
    buf = io.StringIO()
    logs.configure(fmt, buf)
    log = logging.getLogger("sync_server.test")
    log.info("parent %s, phone %s", EMAIL, PHONE, extra={"contact": f"{EMAIL} {PHONE}"})
    try:
        raise ValueError(f"recipient refused: <{EMAIL}>")
    except ValueError:
        log.exception("sending to %s failed", EMAIL)
    text = buf.getvalue()
    assert EMAIL not in text and PHONE not in text and "501234567" not in text
    assert "u***@example.org" in text and "+9665******67" in text
    assert "recipient refused" in text  # the traceback is kept, masked
    if fmt == "json":
        records = [json.loads(line) for line in text.splitlines()]
        assert records[0]["message"] == "parent u***@example.org, phone +9665******67"
        assert records[0]["contact"] == "u***@example.org +9665******67"
        assert "u***@example.org" in records[1]["exc_info"]


@pytest.mark.parametrize("fmt", ["human", "json"])
def test_the_served_access_log_masks_contacts(fmt: str, sqlite_factory: Any,
                                              tmp_path: Any) -> None:
    """The real ``pos-server serve``: a path quoting a parent's email and phone."""
    import httpx

    from .serve_process import serve

    with serve(sqlite_factory.new(), tmp_path, env={"POS_LOG_FORMAT": fmt}) as served:
        resp = httpx.get(f"{served.url}/admin/search/{EMAIL}/{PHONE}",
                         headers={"X-Request-ID": "probe-mask"})
        assert resp.status_code in (303, 401, 404)
    text = served.log_text()
    assert "/admin/search/" in text
    assert EMAIL not in text and PHONE not in text and "501234567" not in text
    assert "u***@example.org" in text
