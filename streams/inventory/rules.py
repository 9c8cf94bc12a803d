"""Stock decisions for one sku: pure functions from values to values.

A sku's row holds what is on hand, the reservations still open (by order id),
its low-stock threshold, and two bounded memories that make every step
idempotent. Its size depends on the orders open at the sku, never on how many
it has sold.

- Restocks carry a command id; the last `RECENT_COMMANDS_KEPT` are remembered.
- Reservation steps (reserve, release, commit, return) come from the order saga,
  each with its `Origin`: the saga input partition and offset of the message the
  saga was handling when it sent the step. The row keeps, per saga input
  partition, the newest offset it applied (`applied`), and a step whose origin is
  not newer is a redelivery: it changes nothing (a reserve answers again).

Why that suffices, without remembering every order ever committed:

1. The saga handles a partition's messages one at a time, in offset order, and
   sends at most one step per sku per message; a sku's commands arrive in the
   order they were sent (one partition, one producer sending in order). So the
   steps one saga partition sends to a sku arrive with increasing origins.
2. A redelivered step has the origin of the step it repeats. If the inventory
   consumer reads it again (a restart, a rebalance), it is the same message.
   If the saga sends it again (it handled its message again after a restart,
   from its last committed offset, with the state it had stored: Faust flushes
   every send and changelog write before it commits an offset), the saga
   message is the same one, at the same offset. Either way the step it repeats
   was applied first, so the row's offset for that partition is already at
   least the origin's.
3. A step that is not a redelivery is newer than every step applied from its
   partition (1), so it is never mistaken for one.

Hence reservations are dropped at commit (a late duplicate commit finds no hold
and is a redelivery anyway), released or committed orders need no marker
against a late duplicate reserve, and a return carries its quantity and is
applied once.

A sku belongs to the seller whose upsert created its product, decided here on
the sku's partition (so of two sellers racing for a new sku, the first in the
log wins): another seller's upsert or restock is refused, a restock needs an
existing product, and an admin may edit any product without taking it over
(only an explicit transfer changes the owner).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum

from core.errors import RuleError
from streams.rejections.rules import Reject, RejectionReason

# How many restock command ids a sku remembers to drop redelivered restocks.
RECENT_COMMANDS_KEPT = 64


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
class Origin:
    """The saga message a reservation step was sent for."""

    source: str  # its topic and partition, "<topic>:<partition>"
    offset: int


@dataclass(frozen=True)
class Stock:
    sku: str
    on_hand: int = 0
    reservations: Mapping[str, int] = field(default_factory=dict)
    low_stock_threshold: int = 5
    recent_commands: tuple[str, ...] = ()
    # Per saga input partition, the offset of the newest saga message whose step was applied.
    applied: Mapping[str, int] = field(default_factory=dict)

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


def already_applied(stock: Stock, origin: Origin | None) -> bool:
    """True when a step from `origin` is a redelivery of one this sku has applied."""
    return origin is not None and stock.applied.get(origin.source, -1) >= origin.offset


def _applied(stock: Stock, origin: Origin | None) -> Mapping[str, int]:
    if origin is None:
        return stock.applied
    return {**stock.applied, origin.source: origin.offset}


def _without(reservations: Mapping[str, int], order_id: str) -> dict[str, int]:
    return {k: v for k, v in reservations.items() if k != order_id}


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
    stock: Stock,
    product: Product | None,
    order_id: str,
    quantity: int,
    origin: Origin | None = None,
) -> tuple[Stock, Reservation]:
    """Hold `quantity` for an order if available stock covers it; same answer when repeated.

    A redelivered reserve changes nothing and answers again (the first answer may
    have been lost in a crash): the grant while the hold is open, else a refusal,
    which a saga that has moved on ignores.
    """
    held = stock.reservations.get(order_id)
    if product is None:
        # No row changes for an unknown sku, so ordering junk skus stores nothing.
        return stock, Refused(RejectReason.UNKNOWN_SKU)
    if already_applied(stock, origin):
        if held is not None:
            return stock, Granted(held, product.price, product.currency)
        return stock, Refused(RejectReason.OUT_OF_STOCK)
    applied = _applied(stock, origin)
    if held is not None:
        return replace(stock, applied=applied), Granted(held, product.price, product.currency)
    if quantity <= 0 or stock.available < quantity:
        return replace(stock, applied=applied), Refused(RejectReason.OUT_OF_STOCK)
    reservations = {**stock.reservations, order_id: quantity}
    return replace(stock, reservations=reservations, applied=applied), Granted(
        quantity, product.price, product.currency
    )


def release(stock: Stock, order_id: str, origin: Origin | None = None) -> Stock:
    """Give a held reservation back; nothing to do if none is held."""
    if already_applied(stock, origin) or order_id not in stock.reservations:
        return stock
    return replace(
        stock,
        reservations=_without(stock.reservations, order_id),
        applied=_applied(stock, origin),
    )


def commit(stock: Stock, order_id: str, origin: Origin | None = None) -> Stock:
    """The reserved units leave on hand for good (the order is paid); the hold is gone."""
    quantity = stock.reservations.get(order_id)
    if already_applied(stock, origin) or quantity is None:
        return stock
    return replace(
        stock,
        on_hand=stock.on_hand - quantity,
        reservations=_without(stock.reservations, order_id),
        applied=_applied(stock, origin),
    )


def return_stock(stock: Stock, order_id: str, quantity: int, origin: Origin | None) -> Stock:
    """A confirmed order's committed units come back on hand (it was cancelled and refunded).

    The sku keeps no record of committed orders: the saga says how many units
    the order's line committed, and the origin makes the return count once.
    """
    if origin is None:
        raise RuleError(f"return for order {order_id} without its origin cannot be applied once")
    if quantity <= 0:
        raise RuleError(f"return for order {order_id} needs a positive quantity, got {quantity}")
    if already_applied(stock, origin):
        return stock
    return replace(stock, on_hand=stock.on_hand + quantity, applied=_applied(stock, origin))


def crossed_low_stock(before: Stock, after: Stock) -> bool:
    """True when availability has just fallen below the sku's threshold."""
    return after.is_low and not before.is_low
