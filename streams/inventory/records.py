"""Stock and products between their rule values and their Avro records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.messages import MessageOrigin
from streams.inventory.rules import Origin, Product, Stock


def stock_from_state(sku: str, record: dict[str, Any] | None) -> Stock:
    if record is None:
        return Stock(sku=sku)
    return Stock(
        sku=record["sku"],
        on_hand=record["on_hand"],
        reservations=dict(record["reservations"]),
        low_stock_threshold=record["low_stock_threshold"],
        recent_commands=tuple(record["recent_commands"]),
        applied=dict(record["applied"]),
    )


def stock_to_state(stock: Stock, now: datetime) -> dict[str, Any]:
    return {
        "sku": stock.sku,
        "on_hand": stock.on_hand,
        "reservations": dict(stock.reservations),
        "low_stock_threshold": stock.low_stock_threshold,
        "recent_commands": list(stock.recent_commands),
        "applied": dict(stock.applied),
        "updated_at": now,
    }


def origin_from_record(record: MessageOrigin | None) -> Origin | None:
    """The rule's Origin from an InventoryCommand's `origin` (None when the sender set none)."""
    if record is None:
        return None
    return Origin(f"{record['topic']}:{record['partition']}", record["offset"])


def inventory_record(stock: Stock, now: datetime) -> dict[str, Any]:
    return {
        "sku": stock.sku,
        "on_hand": stock.on_hand,
        "reserved": stock.reserved,
        "available": stock.available,
        "updated_at": now,
    }


def inventory_view(stock: Stock) -> dict[str, Any]:
    return {
        "sku": stock.sku,
        "on_hand": stock.on_hand,
        "reserved": stock.reserved,
        "available": stock.available,
    }


def product_from_state(record: dict[str, Any] | None) -> Product | None:
    if record is None:
        return None
    return Product(
        sku=record["sku"],
        name=record["name"],
        price=record["price"],
        currency=record["currency"],
        seller_id=record["seller_id"],
    )


def product_to_state(product: Product, now: datetime) -> dict[str, Any]:
    return {
        "sku": product.sku,
        "name": product.name,
        "price": product.price,
        "currency": product.currency,
        "seller_id": product.seller_id,
        "updated_at": now,
    }


def product_view(product: Product) -> dict[str, Any]:
    return {
        "sku": product.sku,
        "name": product.name,
        "price": str(product.price),
        "currency": product.currency,
        "seller_id": product.seller_id,
    }
