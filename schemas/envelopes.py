"""Command and event envelopes, built in one place.

An envelope is the record a topic carries: a unique id (what makes a redelivery
harmless), the key its topic is partitioned by, when it was issued or occurred,
and a payload, the `(branch name, record)` pair a `schemas.messages` builder
returns:

    order_command(order_id, messages.place_order(customer_id=..., lines=..., ...))

The id is a fresh uuid4 and the time is now (UTC) unless given: a command sent
again for the same cause passes the id it derives from that cause, so the
receiver sees one command.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from schemas.messages import (
    CartCommand,
    CartCommandPayload,
    InventoryCommand,
    InventoryCommandPayload,
    MessageOrigin,
    OrderCommand,
    OrderCommandPayload,
    OrderEvent,
    OrderEventPayload,
    PaymentCommand,
    PaymentCommandPayload,
)


def order_command(
    order_id: str,
    payload: OrderCommandPayload,
    *,
    command_id: str | None = None,
    issued_at: datetime | None = None,
) -> OrderCommand:
    return {
        "command_id": str(uuid.uuid4()) if command_id is None else command_id,
        "order_id": order_id,
        "issued_at": datetime.now(UTC) if issued_at is None else issued_at,
        "payload": payload,
    }


def order_event(
    order_id: str,
    payload: OrderEventPayload,
    *,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
) -> OrderEvent:
    return {
        "event_id": str(uuid.uuid4()) if event_id is None else event_id,
        "order_id": order_id,
        "occurred_at": datetime.now(UTC) if occurred_at is None else occurred_at,
        "payload": payload,
    }


def inventory_command(
    sku: str,
    payload: InventoryCommandPayload,
    *,
    origin: MessageOrigin | None = None,
    command_id: str | None = None,
    issued_at: datetime | None = None,
) -> InventoryCommand:
    """`origin`: the saga message a stock step is sent for (None from the gateway)."""
    return {
        "command_id": str(uuid.uuid4()) if command_id is None else command_id,
        "sku": sku,
        "issued_at": datetime.now(UTC) if issued_at is None else issued_at,
        "payload": payload,
        "origin": origin,
    }


def payment_command(
    order_id: str,
    payload: PaymentCommandPayload,
    *,
    command_id: str | None = None,
    issued_at: datetime | None = None,
) -> PaymentCommand:
    return {
        "command_id": str(uuid.uuid4()) if command_id is None else command_id,
        "order_id": order_id,
        "issued_at": datetime.now(UTC) if issued_at is None else issued_at,
        "payload": payload,
    }


def cart_command(
    cart_id: str,
    customer_id: str,
    payload: CartCommandPayload,
    *,
    command_id: str | None = None,
    issued_at: datetime | None = None,
) -> CartCommand:
    """`customer_id`: whose cart the sender says it is; the cart rule checks it."""
    return {
        "command_id": str(uuid.uuid4()) if command_id is None else command_id,
        "cart_id": cart_id,
        "customer_id": customer_id,
        "issued_at": datetime.now(UTC) if issued_at is None else issued_at,
        "payload": payload,
    }
