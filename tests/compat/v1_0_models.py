"""The wire models of the previous release (protocol v1.0), pinned.

Copied from ``shared/protocol.py`` as the first release shipped it (commit 8c72994,
"Foundation: ..."), before any v1.1 field existed: no ``spent_today``, ``grade``,
``homeroom``, ``restrictions``, ``allergens`` or ``position`` in the snapshot, and only the v1.0
flags and reject codes. They stand for a till of that release in the field; do not update them
when the protocol grows. When a release ships a new wire version, pin it beside this file
(``v1_1_models.py``) and point the compatibility test at it.

Requests are built exactly as that release built them (strict, unknown fields refused).
Responses are read as the compatibility rule promises a client may read them: every field that
release knew must be there with its type (``strict``: no string for a number, no float for
money), and fields it did not know are ignored.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)

Id = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=False)]
Uid = Annotated[str, StringConstraints(pattern=r"^[0-9A-F]{8,20}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]

WalletStatus = Literal["active", "frozen", "closed"]
CredentialStatus = Literal["active", "blocked"]
SaleKind = Literal["sale", "void"]
SaleStatus = Literal["applied", "duplicate", "conflict", "rejected"]


class Strict(BaseModel):
    """Request bodies, as v1.0 sent them."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Response(BaseModel):
    """Responses: known fields strict, unknown fields ignored (the compatibility rule)."""

    model_config = ConfigDict(extra="ignore", strict=True)


# ---------------------------------------------------------------- health & enrollment


class HealthResponse(Response):
    status: Literal["ok"] = "ok"
    version: str
    database: Literal["sqlite", "postgresql"]


class EnrollRequest(Strict):
    enrollment_code: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    name: Name


class EnrollResponse(Response):
    device_id: str
    device_token: str
    school_id: str
    currency: str
    server_time: AwareDatetime


# ---------------------------------------------------------------- snapshot


class SchoolSettings(Response):
    currency: str
    offline_max_sale: int
    offline_max_unsynced_total: int
    offline_max_hours: int
    overdraft_limit: int
    timezone: str = "UTC"


class WalletRow(Response):
    wallet_id: str
    display_name: str
    balance: int
    daily_limit: int | None
    status: WalletStatus
    balance_as_of: AwareDatetime


class CredentialRow(Response):
    uid: str
    wallet_id: str
    status: CredentialStatus


class ProductRow(Response):
    product_id: str
    name: str
    price: int
    category: str
    active: bool


class CashierRow(Response):
    cashier_id: str
    name: str
    pin_hash: str
    active: bool


class SnapshotResponse(Response):
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


class SalesPush(Strict):
    sales: list[Sale]


class SaleResult(Response):
    ref: str
    status: SaleStatus
    flags: list[str] = Field(default_factory=list)
    balance_after: int | None = None
    code: str | None = None
    detail: str | None = None
    original_status: str | None = None


class SalesPushResponse(Response):
    results: list[SaleResult]
    acked_seq: int
    missing_seqs: list[int]
    server_time: AwareDatetime
