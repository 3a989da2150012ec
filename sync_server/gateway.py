"""The payment gateway's status API, behind an interface (Electrum's habit with hardware).

Reconciliation (:mod:`.reconciliation`) asks the gateway what became of a payment that stayed
``pending`` longer than the configured time. It needs one question answered, "what is the
status of reference R?", so the interface is that one method; the HTTP client is one way to
answer it, and tests can put a hand-written fake in its place.

The status API as the server expects it (docs/server.md, "Payment reconciliation"):
``GET {gateway_url}/payments/{reference}`` with ``Authorization: Bearer {gateway_api_key}``;
200 with a JSON object (below), 404 when the gateway does not know the reference; any other
answer, a timeout or a network error means "ask again later".
"""

from __future__ import annotations

import abc
import json
from typing import Annotated, Literal
from urllib.parse import quote

import httpx
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    ValidationError,
)

from shared.protocol import Currency, Id

from . import __version__

# Short: a check runs while its payment is leased (reconciliation.LEASE), and a gateway that
# cannot answer in seconds is better asked again later than waited for.
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class GatewayAnswer(BaseModel):
    """What the gateway says of one payment. Unknown fields are ignored (a gateway adds
    fields as it likes); the ones read here are checked strictly: money is an integer."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    reference: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    status: Literal["pending", "completed", "failed"]
    amount: Annotated[StrictInt, Field(gt=0, le=10**12)]  # minor units, as in PaymentEvent
    currency: Currency
    wallet_id: Id | None = None  # when the gateway knows it (the payer's own wallet ID)
    # When the payment reached this status at the gateway: the same on every look-up, so an
    # answer applied twice is the same event twice (a replay), not a conflict.
    updated_at: AwareDatetime


class GatewayUnavailable(Exception):
    """No usable answer this time (5xx, timeout, network, refused credentials, unreadable
    body). ``reason`` is short, safe to store and log: never a key, a header or a URL."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GatewayStatus(abc.ABC):
    """Answers "what is the status of this payment reference?"."""

    @abc.abstractmethod
    async def status(self, reference: str) -> GatewayAnswer | None:
        """The gateway's answer, or None when it does not know the reference.
        Raises :class:`GatewayUnavailable` when it cannot tell now."""

    async def aclose(self) -> None:  # noqa: B027 (optional: most fakes hold nothing)
        """Release connections; the default holds none."""


class HttpGatewayStatus(GatewayStatus):
    """The status API over HTTPS with a bearer key, through one pooled ``httpx`` client."""

    def __init__(self, base_url: str, api_key: str | None, *,
                 timeout: httpx.Timeout | float = TIMEOUT) -> None:
        headers = {"Accept": "application/json", "User-Agent": f"pos-server/{__version__}"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout,
                                         follow_redirects=False)

    async def status(self, reference: str) -> GatewayAnswer | None:
        try:
            resp = await self._client.get(f"payments/{quote(reference, safe='')}")
        except httpx.TimeoutException:
            raise GatewayUnavailable("timeout") from None
        except httpx.HTTPError as exc:  # httpx's messages may carry the URL: keep the kind
            raise GatewayUnavailable(f"network error ({type(exc).__name__})") from None
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise GatewayUnavailable(f"gateway answered HTTP {resp.status_code}")
        try:
            answer = GatewayAnswer.model_validate(resp.json())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise GatewayUnavailable("unreadable answer (not JSON)") from None
        except ValidationError as exc:
            fields = sorted({".".join(str(p) for p in e["loc"]) or "body"
                             for e in exc.errors()})
            raise GatewayUnavailable(f"unreadable answer ({', '.join(fields)[:100]})") from None
        if answer.reference != reference:
            raise GatewayUnavailable("the answer is about another reference")
        return answer

    async def aclose(self) -> None:
        await self._client.aclose()
