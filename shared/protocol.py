"""Pydantic v2 models for every message of sync protocol v1.1 (docs/protocol.md).

Requests are strict: unknown fields are refused (422), money must be a JSON integer (never a
float or a string), times must carry an offset. Responses are parsed leniently on the terminal
(``extra="ignore"``) so a newer server can add fields without breaking old terminals.

These classes are the contract: the server's OpenAPI document is generated from them
(``sync_server/api/openapi.py``). The server builds its health, enrollment and webhook answers
through them. Snapshot pages and push results stay plain dicts on that hot path (building a
5,000-wallet page through the models costs about 0.1 s more); instead every answer any test
receives is validated against the document with objects closed (``tests/contract.py``), so a
field the server sends and these models do not declare fails the suite.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

MAX_SALES_PER_PUSH = 1000
MAX_BODY_BYTES = 8 * 1024 * 1024
SNAPSHOT_PAGE_ROWS = 5000


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None when it can: the one rule for text a
    client sends, on both databases. PostgreSQL refuses NUL in text (SQLite would keep it, and
    the two must agree), and neither driver can encode a lone surrogate, which is what bytes
    that are not UTF-8 become in an HTTP header."""
    if "\x00" in value:
        return "must not contain a NUL character (\\u0000)"
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid UTF-8 text"
    return None


Id = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=False)]
Uid = Annotated[str, StringConstraints(pattern=r"^[0-9A-F]{8,20}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Money = StrictInt
NonNegMoney = Annotated[StrictInt, Field(ge=0)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]

WalletStatus = Literal["active", "frozen", "closed"]
CredentialStatus = Literal["active", "blocked"]
SaleKind = Literal["sale", "void"]
SaleStatus = Literal["applied", "duplicate", "conflict", "rejected"]
RejectCode = Literal[
    "wallet_unknown", "wallet_other_school", "wallet_closed", "total_mismatch",
    "void_target_unknown", "void_mismatch", "void_twice", "product_unknown",
    "cashier_unknown", "seq_reused",
    "balance_out_of_bounds",  # server addition: docs/server.md, Money bounds
]
SaleFlag = Literal[
    "overdraft", "credential_blocked", "credential_mismatch", "wallet_frozen",
    "daily_limit_exceeded", "price_mismatch", "clock_skew",
    "sale_cap_exceeded",  # server addition: docs/server.md, Money bounds
    "restricted_item",    # v1.1
]


def known(values: Any) -> Any:
    """A text field of a response whose values the server takes from ``values`` (a Literal).

    The document (OpenAPI) lists them as an ``enum``, so a response carrying anything else
    fails the contract tests; a client still accepts any text, because a later v1.x may add a
    value (v1.1 added the ``restricted_item`` flag) and an older till must keep syncing."""
    return Annotated[str, WithJsonSchema({"type": "string", "enum": list(get_args(values))})]


class Strict(BaseModel):
    """Base for request bodies: unknown fields and type coercion are errors, and so is text
    that cannot be stored (:func:`text_problem`), in every string field of every request model,
    present and future (a validator here rather than a type on each field, which would also
    hide the fields' patterns and lengths from the JSON schema)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_validator(mode="after")
    def _storable_text(self) -> Strict:
        # One call per model rather than one per field keeps a 1,000-sale push fast.
        bad = [InitErrorDetails(type=PydanticCustomError("text", "text {problem}",
                                                         {"problem": problem}),
                                loc=(name,), input=value)
               for name, value in self.__dict__.items()
               if isinstance(value, str) and (problem := text_problem(value))]
        if bad:
            raise ValidationError.from_exception_data(type(self).__name__, bad)
        return self


class Lenient(BaseModel):
    """Base for responses read by the terminal: tolerate fields added by newer servers.

    The server sends every field, defaults included, so the document marks them all required
    (``json_schema_serialization_defaults_required``); the defaults are only what a client
    assumes when an older server left a field out."""

    model_config = ConfigDict(extra="ignore", json_schema_serialization_defaults_required=True)


# ---------------------------------------------------------------- health & enrollment


class HealthResponse(Lenient):
    status: Literal["ok"] = "ok"
    version: str
    database: Literal["sqlite", "postgresql"]


class EnrollRequest(Strict):
    enrollment_code: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    name: Name


class EnrollResponse(Lenient):
    device_id: str
    device_token: str
    school_id: str
    currency: str
    server_time: AwareDatetime


# ---------------------------------------------------------------- snapshot


class SchoolSettings(Lenient):
    currency: str
    offline_max_sale: int
    offline_max_unsynced_total: int
    offline_max_hours: int
    overdraft_limit: int
    timezone: str = "UTC"


class Restrictions(Lenient):
    """v1.1: what a wallet may not buy (empty lists when nothing is restricted)."""

    blocked_categories: list[str] = Field(default_factory=list)
    blocked_products: list[str] = Field(default_factory=list)
    allergens: list[str] = Field(default_factory=list)


class WalletRow(Lenient):
    wallet_id: str
    display_name: str
    balance: int
    daily_limit: int | None
    status: WalletStatus
    balance_as_of: AwareDatetime
    # v1.1 additions: defaults stand for a v1.0 server that does not send them. None for
    # spent_today means "not said", which the terminal must not read as "nothing spent".
    spent_today: int | None = None
    grade: str | None = None
    homeroom: str | None = None
    restrictions: Restrictions = Field(default_factory=Restrictions)


class CredentialRow(Lenient):
    uid: str
    wallet_id: str
    status: CredentialStatus


class ProductRow(Lenient):
    product_id: str
    name: str
    price: int
    category: str
    active: bool
    # v1.1 additions (defaults for a v1.0 server)
    allergens: list[str] = Field(default_factory=list)
    position: int | None = None             # button order on the till; None: not set


class CashierRow(Lenient):
    cashier_id: str
    name: str
    pin_hash: str
    active: bool


class SnapshotResponse(Lenient):
    cursor: str
    full: bool
    more: bool = False
    server_time: AwareDatetime
    settings: SchoolSettings
    wallets: list[WalletRow]
    credentials: list[CredentialRow]
    products: list[ProductRow]
    cashiers: list[CashierRow]


# ---------------------------------------------------------------- sales push


class SaleLine(Strict):
    product_id: Id
    name: Annotated[str, StringConstraints(max_length=200)]
    quantity: Annotated[StrictInt, Field(ge=1, le=10_000)]
    unit_price: Annotated[StrictInt, Field(ge=0, le=100_000_000)]


class Sale(Strict):
    ref: Annotated[str, StringConstraints(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
    seq: Annotated[StrictInt, Field(ge=1, le=2**53)]
    kind: SaleKind
    voids: Annotated[str, StringConstraints(max_length=64)] | None
    created_at: AwareDatetime
    cashier_id: Id
    wallet_id: Id
    credential_uid: Uid | None
    lines: Annotated[list[SaleLine], Field(min_length=1, max_length=200)]
    total: Annotated[StrictInt, Field(ge=0, le=10**12)]
    offline: StrictBool

    @model_validator(mode="after")
    def _void_names_its_target(self) -> Sale:
        if self.kind == "void" and not self.voids:
            raise ValueError("a void must name the ref of the sale it reverses in 'voids'")
        if self.kind == "sale" and self.voids is not None:
            raise ValueError("'voids' must be null for kind 'sale'")
        return self

    def lines_total(self) -> int:
        return sum(line.quantity * line.unit_price for line in self.lines)


class SalesPush(Strict):
    # No max_length here: more than MAX_SALES_PER_PUSH is a 413, not a 422 (the server checks).
    sales: list[Sale]


OriginalStatus = Literal["applied", "rejected", "conflict"]


def _only_on_replays(schema: dict[str, Any]) -> None:
    """``original_status`` is sent on a replay only (spec), so the document must not require it."""
    schema["required"] = [name for name in schema.get("required", [])
                          if name != "original_status"]


class SaleResult(Lenient):
    model_config = ConfigDict(extra="ignore", json_schema_serialization_defaults_required=True,
                              json_schema_extra=_only_on_replays)

    ref: str
    status: SaleStatus
    flags: list[known(SaleFlag)] = Field(default_factory=list)  # type: ignore[valid-type]
    balance_after: int | None = None
    code: known(RejectCode) | None = None  # type: ignore[valid-type]
    detail: str | None = None
    # Only on a replay (status "duplicate"): the first outcome's status.
    original_status: known(OriginalStatus) | None = None  # type: ignore[valid-type]


class SalesPushResponse(Lenient):
    results: list[SaleResult]
    acked_seq: int
    missing_seqs: list[int]
    server_time: AwareDatetime


# ---------------------------------------------------------------- payment webhook


class PaymentEvent(Strict):
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    # Any text: a type this server does not know is answered 200 and ignored (spec).
    event_type: Annotated[str, StringConstraints(min_length=1, max_length=100),
                          Field(examples=["payment.completed", "refund.completed"])]
    reference: Annotated[str, StringConstraints(max_length=200)]
    wallet_id: Id
    amount: Annotated[StrictInt, Field(gt=0, le=10**12)]
    currency: Currency
    created_at: AwareDatetime


class PaymentAnswer(Lenient):
    """200: the event was applied (or replayed): ``credited``, ``debited`` or ``recorded``."""

    status: known(Literal["credited", "debited", "recorded"])  # type: ignore[valid-type]
    event_id: str
    balance_after: int | None
    flags: list[str]
    replay: bool


class PaymentIgnored(Lenient):
    """200: an event type this server does not know, logged and ignored (spec)."""

    status: Literal["ignored"]
    event_type: str


class PaymentHeld(Lenient):
    """202 (v1.1): stored but not applied; a person settles it, so the gateway stops retrying."""

    event_id: str
    status: Literal["held_for_review"]
    reason: str | None
    detail: str | None
    replay: bool


KNOWN_PAYMENT_EVENTS = ("payment.pending", "payment.completed", "payment.failed",
                        "refund.completed", "refund.failed", "chargeback.created")


def canonical_time(moment: datetime) -> str:
    """One text per instant, so 'identical' compares parsed values, not offsets or bytes."""
    from datetime import UTC

    return moment.astimezone(UTC).isoformat(timespec="microseconds")
