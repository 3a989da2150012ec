"""HTTP calls of sync protocol v1, with every body built and read through ``shared.protocol``.

Failures are sorted by what the caller must do next:
- :class:`ServerUnreachable` — no usable answer; the outcome is unknown, send the same again.
- :class:`DeviceNotAuthorized` — 401/403; keep the queue, show the state.
- :class:`ServerRefusedRequest` — 413/422 and friends: the request itself is wrong.
"""

from __future__ import annotations

import json
import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeVar

import httpx
from pydantic import ValidationError

from shared.problems import Problem
from shared.protocol import (
    EnrollRequest,
    EnrollResponse,
    SalesPush,
    SalesPushResponse,
    SnapshotResponse,
)
from terminal.errors import (
    DeviceNotAuthorized,
    EnrollmentRefused,
    ServerRefusedRequest,
    ServerUnreachable,
)

M = TypeVar("M", EnrollResponse, SalesPushResponse, SnapshotResponse)

DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=3.0)


def user_agent() -> str:
    """``cafeteria-pos-terminal/0.1.0 Python/3.11.7 httpx/0.27.0``: the console's devices page
    shows it, so the school office sees which release each till runs (httpx's own
    ``python-httpx/…`` said nothing about that)."""
    try:
        ours = version("cafeteria-pos")
    except PackageNotFoundError:  # running from a source tree that was never installed
        ours = "0+unknown"
    return (f"cafeteria-pos-terminal/{ours} Python/{platform.python_version()}"
            f" httpx/{httpx.__version__}")


USER_AGENT = user_agent()


class SyncClient:
    """One server, one device token. Cheap to create; close it when done."""

    def __init__(self, server_url: str, device_token: str | None = None, *,
                 timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if device_token:
            headers["Authorization"] = f"Bearer {device_token}"
        self._http = httpx.Client(base_url=server_url.rstrip("/"), headers=headers,
                                  timeout=timeout, transport=transport)
        self.retry_after: float | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ endpoints

    def enroll(self, enrollment_code: str, name: str) -> EnrollResponse:
        body = EnrollRequest(enrollment_code=enrollment_code, name=name)
        response = self._send("POST", "/api/v1/devices/enroll",
                              content=body.model_dump_json(), enrolling=True)
        return _parse(EnrollResponse, response)

    def push(self, sales: list[dict[str, Any]]) -> SalesPushResponse:
        """Push up to 1,000 sales. The body is validated against the same strict model the
        server uses before it leaves, so a malformed row is caught here, not as a 422 that
        would block the queue; the bytes sent are the ones validated."""
        content = json.dumps({"sales": sales}, separators=(",", ":"))
        try:
            SalesPush.model_validate_json(content)
        except ValidationError as exc:
            raise ServerRefusedRequest(
                f"a queued sale does not match the protocol: {_first_error(exc)}") from None
        response = self._send("POST", "/api/v1/sync/sales", content=content)
        return _parse(SalesPushResponse, response)

    def snapshot(self, cursor: str | None) -> SnapshotResponse:
        params = {"cursor": cursor} if cursor else None
        response = self._send("GET", "/api/v1/sync/snapshot", params=params)
        return _parse(SnapshotResponse, response)

    # ------------------------------------------------------------------ plumbing

    def _send(self, method: str, path: str, *, content: str | None = None,
              params: dict[str, str] | None = None, enrolling: bool = False) -> httpx.Response:
        self.retry_after = None
        headers = {"Content-Type": "application/json"} if content is not None else None
        try:
            response = self._http.request(method, path, content=content, params=params,
                                          headers=headers)
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"server not reachable ({type(exc).__name__})") from None
        status = response.status_code
        if status < 400:
            return response
        problem = _problem(response)
        if status == 429 or status >= 500:
            self.retry_after = _retry_after(response)
            raise ServerUnreachable(f"server busy or failing (HTTP {status})")
        if enrolling and status in (401, 403):
            raise EnrollmentRefused("enrollment code refused (used, expired or unknown)")
        if status == 401:
            raise DeviceNotAuthorized(
                "unauthorized", "the server does not recognise this terminal (HTTP 401); "
                "enroll it again")
        if status == 403:
            revoked = problem is not None and problem.slug == "device-revoked"
            raise DeviceNotAuthorized(
                "revoked" if revoked else "forbidden",
                "this terminal has been revoked by the school (HTTP 403)" if revoked
                else "the server refused this terminal (HTTP 403)")
        detail = (problem.detail or problem.title) if problem else response.reason_phrase
        raise ServerRefusedRequest(f"server refused the request (HTTP {status}): {detail}")


def _problem(response: httpx.Response) -> Problem | None:
    try:
        return Problem.model_validate_json(response.content)
    except ValidationError:
        return None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _parse(model: type[M], response: httpx.Response) -> M:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        # An answer we cannot read is as good as no answer: the outcome stays unknown.
        raise ServerUnreachable(
            f"unreadable answer from the server: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = "/".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {err.get('msg', 'invalid')}"
