"""RFC 9457 problem documents: the one error shape of the sync protocol.

The server builds every error through :func:`problem`; the terminal parses them with
:class:`Problem`. ``type`` URIs live under one base so clients can match on the last segment
(the spec's ``/device-revoked``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

PROBLEM_BASE = "https://pos.example/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class FieldProblem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    pointer: str
    message: str


class Problem(BaseModel):
    """A problem document as received; extra members are allowed by RFC 9457."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldProblem] | None = None

    @property
    def slug(self) -> str:
        """The last path segment of ``type``: ``device-revoked``, ``validation`` …"""
        return self.type.rstrip("/").rsplit("/", 1)[-1]


def problem(status: int, slug: str, title: str, detail: str | None = None,
            errors: list[dict[str, str]] | None = None, **extra: Any) -> dict[str, Any]:
    """The JSON body of a problem. ``detail`` must never carry a token, PIN or full UID."""
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status}
    if detail is not None:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    return body


def pointer_from_loc(loc: tuple[int | str, ...]) -> str:
    """pydantic's error location -> a JSON Pointer (RFC 6901) into the request body."""
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in loc]
    return "/" + "/".join(parts) if parts else ""
