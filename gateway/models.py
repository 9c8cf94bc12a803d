"""Request and response bodies of the gateway's HTTP API (pydantic models).

Requests are validated here, so a route only ever sees well-formed input: the
422 answers name the field and the reason. Responses mirror what the workers'
web views return, minus internals such as the order's request hash.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator
from typing_extensions import TypeAliasType

from streams.carts import rules as cart_rules
from streams.orders import rules as order_rules

# Ids the client chooses (skus, cart ids): 1-64 characters, a letter or digit first,
# then letters, digits, '_' or '-'. No '.', '/', '%' or '@': an id is always one
# literal path segment (never '.' or '..', which URL normalisation would remove on
# the way to a worker) and never splits an analytics window id (`sku@start`).
# Every path parameter and body field holding an sku or cart id uses this pattern.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
ID_DESCRIPTION = "1-64 characters: a letter or digit, then letters, digits, _ or -"
SKU_PATTERN = ID_PATTERN
CURRENCY_PATTERN = r"^[A-Z]{3}$"
AVRO_INT_MAX = 2**31 - 1

MAX_ORDER_LINES = 50
# Per order line and per cart line.
MAX_LINE_QUANTITY = 1000
# Per restock command. Stock counts are Avro longs and Postgres bigints end to end,
# so no number of restocks can overflow them; the bound catches typos and abuse.
MAX_RESTOCK_QUANTITY = 1_000_000

Sku = Annotated[
    str, Field(pattern=SKU_PATTERN, description=ID_DESCRIPTION, examples=["tee-black-m"])
]
# Avro decimal(12, 2): ten integer digits and two decimals at most.
Price = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2, examples=["12.34"])]


# The workers' own enums (their rules modules build no Faust app). Both are called
# `Status` there; the aliases keep the names the OpenAPI schema has always given them,
# where pydantic would otherwise name each by its module path.
OrderStatus = TypeAliasType("OrderStatus", order_rules.Status)
CartStatus = TypeAliasType("CartStatus", cart_rules.Status)


class RequestModel(BaseModel):
    # Unknown fields are refused rather than ignored: a typo such as "qty" must not
    # silently become a default.
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    """Every error answer: `{"detail": ...}`."""

    detail: Any


# Catalog and stock.


class ProductUpsert(RequestModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    price: Price
    currency: Annotated[str, Field(pattern=CURRENCY_PATTERN, examples=["BRL"])]
    low_stock_threshold: Annotated[StrictInt, Field(ge=0, le=AVRO_INT_MAX)] = 5
    # Admins only: the seller the product belongs to after this upsert (a transfer).
    # Left out, a new product is the caller's and an existing one keeps its seller.
    seller_id: Annotated[str | None, Field(min_length=1, max_length=200)] = None


class Restock(RequestModel):
    quantity: Annotated[StrictInt, Field(gt=0, le=MAX_RESTOCK_QUANTITY)]


class CommandAccepted(BaseModel):
    sku: str
    accepted: Literal[True] = True
    # Names the command in GET /v1/rejections if the agent refuses it.
    command_id: str


class ProductView(BaseModel):
    sku: str
    name: str
    price: Decimal
    currency: str
    seller_id: str


class InventoryView(BaseModel):
    sku: str
    on_hand: int
    reserved: int
    available: int


# Orders.


class OrderItem(RequestModel):
    sku: Sku
    quantity: Annotated[StrictInt, Field(ge=1, le=MAX_LINE_QUANTITY)]


class CardPayment(RequestModel):
    method: Literal["card"]
    token: Annotated[str, Field(min_length=1, max_length=256)]


class PlaceOrderRequest(RequestModel):
    items: Annotated[list[OrderItem], Field(min_length=1, max_length=MAX_ORDER_LINES)]
    payment: CardPayment

    @field_validator("items")
    @classmethod
    def _distinct_skus(cls, items: list[OrderItem]) -> list[OrderItem]:
        # One line per sku: reservations are stored per (order, sku).
        counts = Counter(item.sku for item in items)
        duplicates = sorted(sku for sku, n in counts.items() if n > 1)
        if duplicates:
            raise ValueError(f"duplicate skus: {', '.join(duplicates)}")
        return items


class OrderAccepted(BaseModel):
    order_id: str
    status: OrderStatus
    command_id: str


class CancelAccepted(BaseModel):
    order_id: str
    accepted: Literal[True] = True
    command_id: str


class OrderLineView(BaseModel):
    sku: str
    quantity: int
    unit_price: Decimal | None = None


class OrderView(BaseModel):
    order_id: str
    customer_id: str
    status: OrderStatus
    reason: str | None = None
    lines: list[OrderLineView]
    total: Decimal
    currency: str | None = None
    created_at: datetime
    updated_at: datetime


# Carts.

# Cart ids are chosen by the client, with the same rule as skus.
CART_ID_PATTERN = ID_PATTERN
# A cart becomes one order, so it holds no more lines than an order may have.
MAX_CART_LINES = MAX_ORDER_LINES


class CartItemUpdate(RequestModel):
    quantity: Annotated[StrictInt, Field(ge=1, le=MAX_LINE_QUANTITY)]


class CheckoutRequest(RequestModel):
    payment: CardPayment


class CartCommandAccepted(BaseModel):
    cart_id: str
    accepted: Literal[True] = True
    command_id: str


class CheckoutAccepted(BaseModel):
    order_id: str
    command_id: str


class CartItemView(BaseModel):
    sku: str
    quantity: int


class CartView(BaseModel):
    cart_id: str
    customer_id: str
    status: CartStatus
    items: list[CartItemView]


# Refused commands.


class RejectionView(BaseModel):
    command_id: str
    command: str
    subject: str
    reason: str
    rejected_at: datetime


class RejectionsView(BaseModel):
    requested_by: str
    rejections: list[RejectionView]


class ReadyChecks(BaseModel):
    kafka: str
    schema_registry: str


class ReadyBody(BaseModel):
    status: Literal["ready"] = "ready"
    checks: ReadyChecks


class NotReadyBody(BaseModel):
    detail: str
    checks: ReadyChecks


class HealthBody(BaseModel):
    status: Literal["ok"] = "ok"


_ERROR_DESCRIPTIONS = {
    400: "Bad request (Idempotency-Key missing or longer than 64 characters)",
    401: "Missing, malformed, badly signed or expired bearer token",
    403: "The token's role may not do this",
    404: "Not found, or not visible to this caller",
    409: "Conflicts with the current state",
    413: "Request body larger than the configured limit",
    502: "A worker answered something unexpected",
    503: "A worker (reads only), Kafka or the schema registry is unavailable; see Retry-After",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the given error codes, all with the `{"detail"}` body."""
    return {code: {"model": ErrorBody, "description": _ERROR_DESCRIPTIONS[code]} for code in codes}
