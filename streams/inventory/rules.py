"""Stock decisions for one sku: pure functions from values to values.

Reservations are stored under their order id, so every step is idempotent: a
repeated reserve answers the same, a repeated release, commit or return
changes nothing. Available stock is on hand minus reserved and never goes
below zero.

A sku belongs to the seller whose upsert created its product, decided here on
the sku's partition (so of two sellers racing for a new sku, the first in the
log wins): another seller's upsert or restock is refused, a restock needs an
existing product, and an admin may edit any product without taking it over
(only an explicit transfer changes the owner).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum

from streams.errors import RuleError
from streams.rejections.rules import Reject, RejectionReason

# How many restock command ids, and released or returned order ids, a sku remembers
# to drop late redeliveries. A replay reaching further back than that is not absorbed.
RECENT_COMMANDS_KEPT = 64
CLOSED_ORDERS_KEPT = 256


class RejectReason(StrEnum):
    OUT_OF_STOCK = "OUT_OF_STOCK"
    UNKNOWN_SKU = "UNKNOWN_SKU"


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price: Decimal
    currency: str
    seller_id: str


@dataclass(frozen=True)
class Stock:
    sku: str
    on_hand: int = 0
    reservations: dict[str, int] = field(default_factory=dict)
    committed: dict[str, int] = field(default_factory=dict)
    low_stock_threshold: int = 5
    recent_commands: tuple[str, ...] = ()
    # Orders whose hold was released or returned: a late duplicate reserve or commit
    # for them must not hold stock again.
    closed_orders: tuple[str, ...] = ()

    @property
    def reserved(self) -> int:
        return sum(self.reservations.values())

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @property
    def is_low(self) -> bool:
        return self.available < self.low_stock_threshold


@dataclass(frozen=True)
class Granted:
    quantity: int
    unit_price: Decimal
    currency: str


@dataclass(frozen=True)
class Refused:
    reason: RejectReason


Reservation = Granted | Refused


@dataclass(frozen=True)
class Requester:
    """Who sent a command: the token's subject, and whether its role is admin."""

    id: str
    is_admin: bool = False


def decide_upsert(
    product: Product | None,
    requester: Requester,
    *,
    sku: str,
    name: str,
    price: Decimal,
    currency: str,
    transfer_to: str | None = None,
) -> Product | Reject:
    """The product after an upsert, or why it is refused.

    The first upsert of a sku makes its requester the owner (an admin may name
    another seller with `transfer_to`). Afterwards only the owner or an admin may
    change it, and the owner stays unless an admin transfers it.
    """
    if transfer_to is not None and not requester.is_admin and transfer_to != requester.id:
        return Reject(RejectionReason.TRANSFER_NOT_ALLOWED)
    if product is None:
        owner = transfer_to or requester.id
    elif requester.is_admin:
        owner = transfer_to or product.seller_id
    elif requester.id == product.seller_id:
        owner = product.seller_id
    else:
        return Reject(RejectionReason.SKU_OWNED_BY_ANOTHER_SELLER)
    return Product(sku=sku, name=name, price=price, currency=currency, seller_id=owner)


def authorize_restock(product: Product | None, requester: Requester) -> Reject | None:
    """None when the requester may restock the sku: its product exists and is theirs (or admin)."""
    if product is None:
        return Reject(RejectionReason.UNKNOWN_SKU)
    if not requester.is_admin and requester.id != product.seller_id:
        return Reject(RejectionReason.SKU_OWNED_BY_ANOTHER_SELLER)
    return None


def restock(stock: Stock, command_id: str, quantity: int) -> Stock:
    if quantity <= 0:
        raise RuleError(f"restock quantity must be positive, got {quantity}")
    if command_id in stock.recent_commands:
        return stock
    recent = (*stock.recent_commands, command_id)[-RECENT_COMMANDS_KEPT:]
    return replace(stock, on_hand=stock.on_hand + quantity, recent_commands=recent)


def set_threshold(stock: Stock, threshold: int) -> Stock:
    return (
        stock
        if stock.low_stock_threshold == threshold
        else replace(stock, low_stock_threshold=threshold)
    )


def decide_reservation(
    stock: Stock, product: Product | None, order_id: str, quantity: int
) -> tuple[Stock, Reservation]:
    """Hold `quantity` for an order if available stock covers it; same answer when repeated."""
    if product is None:
        return stock, Refused(RejectReason.UNKNOWN_SKU)
    if order_id in stock.closed_orders:
        return stock, Refused(RejectReason.OUT_OF_STOCK)
    held = stock.reservations.get(order_id, stock.committed.get(order_id))
    if held is not None:
        return stock, Granted(held, product.price, product.currency)
    if quantity <= 0 or stock.available < quantity:
        return stock, Refused(RejectReason.OUT_OF_STOCK)
    reservations = {**stock.reservations, order_id: quantity}
    return replace(stock, reservations=reservations), Granted(
        quantity, product.price, product.currency
    )


def release(stock: Stock, order_id: str) -> Stock:
    """Give a held reservation back; nothing to do if none is held."""
    if order_id not in stock.reservations:
        return stock
    reservations = {k: v for k, v in stock.reservations.items() if k != order_id}
    return replace(stock, reservations=reservations, closed_orders=_closing(stock, order_id))


def commit(stock: Stock, order_id: str) -> Stock:
    """The reserved units leave on hand for good (the order is paid)."""
    quantity = stock.reservations.get(order_id)
    if quantity is None:
        return stock
    reservations = {k: v for k, v in stock.reservations.items() if k != order_id}
    return replace(
        stock,
        on_hand=stock.on_hand - quantity,
        reservations=reservations,
        committed={**stock.committed, order_id: quantity},
    )


def return_stock(stock: Stock, order_id: str) -> Stock:
    """Committed units come back on hand (a confirmed order was cancelled and refunded)."""
    quantity = stock.committed.get(order_id)
    if quantity is None:
        return stock
    committed = {k: v for k, v in stock.committed.items() if k != order_id}
    return replace(
        stock,
        on_hand=stock.on_hand + quantity,
        committed=committed,
        closed_orders=_closing(stock, order_id),
    )


def _closing(stock: Stock, order_id: str) -> tuple[str, ...]:
    return (*stock.closed_orders, order_id)[-CLOSED_ORDERS_KEPT:]


def crossed_low_stock(before: Stock, after: Stock) -> bool:
    """True when availability has just fallen below the sku's threshold."""
    return after.is_low and not before.is_low
