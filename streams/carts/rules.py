"""Cart decisions as pure transitions: (cart, command) -> (cart, effects).

A cart belongs to the customer whose first line created it; commands from
anyone else are refused. An OPEN cart holds one line per sku (1-1000 units, at
most `MAX_LINES` lines). Checking out places one order, whose id the command
carries, and closes the cart for good; an idle cart is abandoned. Status only
moves forward (OPEN -> CHECKED_OUT or ABANDONED), and a repeated command
changes nothing: it re-emits at most what it emitted the first time, so a
redelivery after a crash between storing and sending still gets the effect out.

A client command the cart cannot take (another customer's cart, a closed,
empty or full one) is refused with a `Reject` effect: the cart stays as it is
and the customer can read why. A command whose effect the cart already shows
(the same quantity, a line already gone) is not refused, so a redelivery of a
command applied before the cart closed stays silent.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from core.errors import RuleError
from streams.rejections.rules import Reject, RejectionReason

MIN_QUANTITY = 1
MAX_QUANTITY = 1000
# Same cap as an order placed directly (gateway MAX_ORDER_LINES): a cart becomes an order.
MAX_LINES = 50


class Status(StrEnum):
    OPEN = "OPEN"
    CHECKED_OUT = "CHECKED_OUT"
    ABANDONED = "ABANDONED"


@dataclass(frozen=True)
class Cart:
    cart_id: str
    customer_id: str
    status: Status
    created_at: datetime
    updated_at: datetime
    items: dict[str, int] = field(default_factory=dict)
    order_id: str | None = None

    @property
    def lines(self) -> tuple[tuple[str, int], ...]:
        """(sku, quantity) sorted by sku, so an order built from the cart is deterministic."""
        return tuple(sorted(self.items.items()))

    def idle_deadline(self, idle: timedelta) -> datetime:
        return self.updated_at + idle


@dataclass(frozen=True)
class Payment:
    method: str
    token: str


# -- effects: what the agent must send after storing the new cart -------------------------


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str
    customer_id: str
    lines: tuple[tuple[str, int], ...]
    payment: Payment
    request_hash: str


@dataclass(frozen=True)
class Abandoned:
    """CartAbandoned on cart-events; `occurred_at` is when the cart was abandoned."""

    item_count: int
    occurred_at: datetime


@dataclass(frozen=True)
class Publish:
    """The cart's public state changed."""


Effect = PlaceOrder | Abandoned | Publish | Reject
Outcome = tuple[Cart | None, list[Effect]]


# -- transitions --------------------------------------------------------------------------


def set_line(
    cart: Cart | None,
    *,
    cart_id: str,
    customer_id: str,
    sku: str,
    quantity: int,
    now: datetime,
) -> Outcome:
    if not sku:
        raise RuleError(f"cart {cart_id}: a line needs a sku")
    if not MIN_QUANTITY <= quantity <= MAX_QUANTITY:
        raise RuleError(
            f"cart {cart_id}: quantity {quantity} outside {MIN_QUANTITY}-{MAX_QUANTITY}"
        )
    if cart is None:
        created = Cart(cart_id, customer_id, Status.OPEN, now, now, {sku: quantity})
        return created, [Publish()]
    if customer_id != cart.customer_id:
        return _refuse(cart, RejectionReason.CART_OF_ANOTHER_CUSTOMER)
    if cart.items.get(sku) == quantity:
        return cart, []
    if cart.status is not Status.OPEN:
        return _refuse(cart, RejectionReason.CART_CLOSED)
    if sku not in cart.items and len(cart.items) >= MAX_LINES:
        return _refuse(cart, RejectionReason.CART_FULL)
    updated = replace(cart, items={**cart.items, sku: quantity}, updated_at=now)
    return updated, [Publish()]


def remove_line(cart: Cart | None, *, customer_id: str, sku: str, now: datetime) -> Outcome:
    if cart is None:
        return None, []  # nothing to remove; no cart is created for it
    if customer_id != cart.customer_id:
        return _refuse(cart, RejectionReason.CART_OF_ANOTHER_CUSTOMER)
    if sku not in cart.items:
        return cart, []
    if cart.status is not Status.OPEN:
        return _refuse(cart, RejectionReason.CART_CLOSED)
    items = {k: v for k, v in cart.items.items() if k != sku}
    return replace(cart, items=items, updated_at=now), [Publish()]


def check_out(
    cart: Cart | None,
    *,
    customer_id: str,
    order_id: str,
    payment: Payment,
    request_hash: str,
    now: datetime,
) -> Outcome:
    if cart is None:
        # Checking out creates no cart: the id stays free for whoever fills it first.
        return None, [Reject(RejectionReason.CART_EMPTY)]
    if customer_id != cart.customer_id:
        return _refuse(cart, RejectionReason.CART_OF_ANOTHER_CUSTOMER)
    if cart.status is Status.CHECKED_OUT:
        if order_id != cart.order_id:
            raise RuleError(f"cart {cart.cart_id} already checked out as order {cart.order_id}")
        # A redelivery or a retry: the order may not have gone out before a crash. The
        # saga applies one PlaceOrder per order id (and refuses one with another body).
        return cart, [_place_order(cart, order_id, payment, request_hash)]
    if cart.status is Status.ABANDONED:
        return _refuse(cart, RejectionReason.CART_CLOSED)
    if not cart.items:
        return _refuse(cart, RejectionReason.CART_EMPTY)
    checked_out = replace(cart, status=Status.CHECKED_OUT, order_id=order_id, updated_at=now)
    return checked_out, [_place_order(checked_out, order_id, payment, request_hash), Publish()]


def abandon(cart: Cart | None, *, customer_id: str, now: datetime, idle: timedelta) -> Outcome:
    """Abandon an OPEN cart idle for `idle` or longer; the timer asks, this decides."""
    if cart is None:
        return None, []
    _ensure_owner(cart, customer_id)
    if cart.status is Status.ABANDONED:
        # A redelivery re-emits the same event (same cart, same time); notifications
        # derive their id from the cart, so the customer hears about it once.
        return cart, _abandoned_event(cart)
    if cart.status is not Status.OPEN or not is_idle(cart, now, idle):
        return cart, []
    abandoned = replace(cart, status=Status.ABANDONED, updated_at=now)
    return abandoned, [*_abandoned_event(abandoned), Publish()]


def is_idle(cart: Cart, now: datetime, idle: timedelta) -> bool:
    return cart.status is Status.OPEN and now >= cart.idle_deadline(idle)


def _abandoned_event(cart: Cart) -> list[Effect]:
    # An empty cart left behind is nothing to remind anyone of: closed quietly.
    if not cart.items:
        return []
    return [Abandoned(item_count=sum(cart.items.values()), occurred_at=cart.updated_at)]


def _place_order(cart: Cart, order_id: str, payment: Payment, request_hash: str) -> PlaceOrder:
    return PlaceOrder(order_id, cart.customer_id, cart.lines, payment, request_hash)


def _refuse(cart: Cart, reason: RejectionReason) -> Outcome:
    return cart, [Reject(reason)]


def _ensure_owner(cart: Cart, customer_id: str) -> None:
    # Only the idle-cart timer abandons, naming the stored owner: a mismatch is a bug.
    if customer_id != cart.customer_id:
        raise RuleError(f"cart {cart.cart_id} belongs to another customer")
