"""Carts between their rule values and their Avro records (state, public, events, web)."""

from __future__ import annotations

from typing import Any

from schemas import messages
from streams.carts.rules import Abandoned, Cart, PlaceOrder, Status


def cart_from_state(record: dict[str, Any] | None) -> Cart | None:
    if record is None:
        return None
    return Cart(
        cart_id=record["cart_id"],
        customer_id=record["customer_id"],
        status=Status(record["status"]),
        items=dict(record["items"]),
        order_id=record["order_id"],
        created_at=record["created_at"],
        updated_at=record["updated_at"],
    )


def cart_record(cart: Cart) -> dict[str, Any]:
    """CartState: the carts table and the public carts topic hold the same record."""
    return {
        "cart_id": cart.cart_id,
        "customer_id": cart.customer_id,
        "status": cart.status.value,
        "items": dict(cart.items),
        "order_id": cart.order_id,
        "created_at": cart.created_at,
        "updated_at": cart.updated_at,
    }


def place_order_payload(effect: PlaceOrder) -> messages.OrderCommandPayload:
    """The PlaceOrder branch of an OrderCommand."""
    return messages.place_order(
        customer_id=effect.customer_id,
        lines=[{"sku": sku, "quantity": quantity} for sku, quantity in effect.lines],
        payment={"method": effect.payment.method, "token": effect.payment.token},
        request_hash=effect.request_hash,
    )


def abandoned_record(cart: Cart, effect: Abandoned) -> dict[str, Any]:
    """CartAbandoned (topic cart-events)."""
    return {
        "cart_id": cart.cart_id,
        "customer_id": cart.customer_id,
        "item_count": effect.item_count,
        "occurred_at": effect.occurred_at,
    }


def cart_view(cart: Cart) -> dict[str, Any]:
    """JSON for the worker's web view; the gateway shapes its response from this."""
    return {
        "cart_id": cart.cart_id,
        "customer_id": cart.customer_id,
        "status": cart.status.value,
        "items": [{"sku": sku, "quantity": quantity} for sku, quantity in cart.lines],
        "order_id": cart.order_id,
    }
