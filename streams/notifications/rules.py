"""What to tell whom: pure functions from events to notifications.

A notification's id is derived from what it is about (kind, subject, and the
status or moment that makes it new), and its time is the event's own time, so
the same event seen twice yields the very same notification and the agent can
drop the repeat by id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

# Fixed forever: ids of notifications already sent are derived from it.
NOTIFICATION_NAMESPACE = uuid.UUID("5a3e9c1d-7b2f-5d48-8e6a-1c0f4b9d2e73")

# Who hears about low stock of a sku no seller is known for.
OPERATIONS = "operations"


class Kind(StrEnum):
    ORDER_CONFIRMED = "ORDER_CONFIRMED"
    ORDER_REJECTED = "ORDER_REJECTED"
    ORDER_EXPIRED = "ORDER_EXPIRED"
    ORDER_CANCELLED = "ORDER_CANCELLED"
    LOW_STOCK = "LOW_STOCK"
    CART_ABANDONED = "CART_ABANDONED"


# Settled order statuses and what they are called to the customer.
ORDER_KINDS = {
    "CONFIRMED": Kind.ORDER_CONFIRMED,
    "REJECTED": Kind.ORDER_REJECTED,
    "EXPIRED": Kind.ORDER_EXPIRED,
    "CANCELLED": Kind.ORDER_CANCELLED,
}

REASON_TEXT = {
    "OUT_OF_STOCK": "an item is out of stock",
    "UNKNOWN_SKU": "an item is not in the catalog",
    "PAYMENT_DECLINED": "the payment was declined",
    "PAYMENT_UNAVAILABLE": "the payment could not be processed",
    "RESERVATION_EXPIRED": "it was not completed in time",
    "CUSTOMER_CANCELLED": "you cancelled it",
}


@dataclass(frozen=True)
class Notification:
    notification_id: str
    kind: Kind
    recipient: str
    subject_id: str
    message: str
    created_at: datetime


def notification_id(kind: Kind, subject_id: str, discriminator: str) -> str:
    return str(uuid.uuid5(NOTIFICATION_NAMESPACE, f"{kind.value}:{subject_id}:{discriminator}"))


def for_order(
    *,
    order_id: str,
    customer_id: str,
    status: str,
    reason: str | None,
    total: Decimal,
    currency: str | None,
    updated_at: datetime,
) -> Notification | None:
    """The customer hears when an order settles; PENDING and RESERVED are not news."""
    kind = ORDER_KINDS.get(status)
    if kind is None:
        return None
    why = f": {REASON_TEXT.get(reason, reason.lower())}" if reason else ""
    match kind:
        case Kind.ORDER_CONFIRMED:
            amount = f" Total {total} {currency}." if currency else ""
            message = f"Your order {order_id} is confirmed.{amount}"
        case Kind.ORDER_REJECTED:
            message = f"Your order {order_id} could not be placed{why}."
        case Kind.ORDER_EXPIRED:
            message = f"Your order {order_id} expired{why}."
        case _:
            message = f"Your order {order_id} was cancelled{why}."
    return Notification(
        notification_id(kind, order_id, status),
        kind,
        customer_id,
        order_id,
        message,
        updated_at,
    )


def for_stock_alert(
    *, sku: str, seller_id: str | None, available: int, threshold: int, occurred_at: datetime
) -> Notification:
    """The seller hears each time a sku falls below its threshold (operations if unowned)."""
    # Each fall below the threshold is its own alert; its time tells them apart.
    discriminator = str(int(occurred_at.timestamp() * 1000))
    return Notification(
        notification_id(Kind.LOW_STOCK, sku, discriminator),
        Kind.LOW_STOCK,
        seller_id or OPERATIONS,
        sku,
        f"Low stock for {sku}: {available} available, below the threshold of {threshold}.",
        occurred_at,
    )


def for_abandoned_cart(
    *, cart_id: str, customer_id: str, item_count: int, occurred_at: datetime
) -> Notification:
    """The customer is reminded once of a cart left behind (a cart is abandoned once)."""
    things = "1 item" if item_count == 1 else f"{item_count} items"
    return Notification(
        notification_id(Kind.CART_ABANDONED, cart_id, "ABANDONED"),
        Kind.CART_ABANDONED,
        customer_id,
        cart_id,
        f"You left {things} in your cart {cart_id}.",
        occurred_at,
    )
