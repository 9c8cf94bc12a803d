"""Commands the gateway sends: how they are built, identified and published.

The builders return plain dicts in fastavro's shape (union payloads as
`(record name, fields)` tuples) for `InventoryCommand` and `OrderCommand`;
`CommandPublisher` encodes them with the topic's registered schema and hands
the bytes to the producer, keyed the way `core.topics` says.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel

from core.topics import (
    CART_COMMANDS,
    INVENTORY_COMMANDS,
    ORDER_COMMANDS,
    TopicSpec,
    value_codec,
)
from gateway.auth import Principal
from gateway.models import PlaceOrderRequest, ProductUpsert
from gateway.producer import CommandProducer
from schemas.codec import AvroCodec
from schemas.errors import RegistryError, RegistryUnavailable
from schemas.money import CENT
from schemas.serdes import Serdes

# Fixed forever: order ids of already placed orders are derived from it.
ORDER_ID_NAMESPACE = uuid.UUID("6d0f3b1c-2a4e-5b7d-9c8e-4f1a2b3c4d5e")

Command = dict[str, Any]


def order_id_for(customer_id: str, idempotency_key: str) -> str:
    """The order a (customer, Idempotency-Key) pair names: a retry maps to the same one.

    The pair is encoded as a JSON array, which no other pair encodes to: joining
    with a separator would let ("a:k", "1") and ("a", "k:1") name the same order.
    """
    name = json.dumps([customer_id, idempotency_key], ensure_ascii=False, separators=(",", ":"))
    return str(uuid.uuid5(ORDER_ID_NAMESPACE, name))


def request_hash(body: BaseModel) -> str:
    """sha256 of the validated body's canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(
        body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _envelope(key_field: str, key: str, payload: tuple[str, dict[str, Any]]) -> Command:
    return {
        "command_id": str(uuid.uuid4()),
        key_field: key,
        "issued_at": datetime.now(UTC),
        "payload": payload,
    }


def avro_role(principal: Principal) -> str:
    """The principal's role as the `momentum.Role` symbol commands carry."""
    return principal.role.value.upper()


def upsert_product_command(sku: str, product: ProductUpsert, principal: Principal) -> Command:
    """UpsertProduct from `principal`; whether they may is the inventory agent's decision."""
    transfer_to = product.seller_id if product.seller_id != principal.sub else None
    return _envelope(
        "sku",
        sku,
        (
            "momentum.UpsertProduct",
            {
                "name": product.name,
                "price": product.price.quantize(CENT),
                "currency": product.currency,
                "seller_id": principal.sub,
                "low_stock_threshold": product.low_stock_threshold,
                "role": avro_role(principal),
                "transfer_to": transfer_to,
            },
        ),
    )


def restock_command(sku: str, quantity: int, principal: Principal) -> Command:
    payload = {"quantity": quantity, "requested_by": principal.sub, "role": avro_role(principal)}
    return _envelope("sku", sku, ("momentum.Restock", payload))


def place_order_command(
    order_id: str, customer_id: str, order: PlaceOrderRequest, hash_: str
) -> Command:
    return _envelope(
        "order_id",
        order_id,
        (
            "momentum.PlaceOrder",
            {
                "customer_id": customer_id,
                "lines": [{"sku": i.sku, "quantity": i.quantity} for i in order.items],
                "payment": {"method": order.payment.method, "token": order.payment.token},
                "request_hash": hash_,
            },
        ),
    )


def cancel_order_command(order_id: str, principal: Principal) -> Command:
    payload = {"requested_by": principal.sub, "role": avro_role(principal)}
    return _envelope("order_id", order_id, ("momentum.CancelOrder", payload))


class CommandPublisher:
    """Encodes commands and sends them, keyed by the topic's key field."""

    def __init__(self, serdes: Serdes, producer: CommandProducer) -> None:
        self._serdes = serdes
        self._producer = producer
        self._codecs: dict[str, AvroCodec] = {}

    async def prepare(self) -> None:
        """Register the command schemas now, so the first request does not wait."""
        for topic in (INVENTORY_COMMANDS, ORDER_COMMANDS, CART_COMMANDS):
            await self._codec(topic)

    async def publish(self, topic: TopicSpec, command: Command) -> None:
        codec = await self._codec(topic)
        await self._producer.send(topic.name, command[topic.key], codec.encode(command))

    async def _codec(self, topic: TopicSpec) -> AvroCodec:
        codec = self._codecs.get(topic.name)
        if codec is None:
            # The registry client is synchronous: keep its one-time call off the loop.
            try:
                codec = await asyncio.to_thread(value_codec, topic, self._serdes)
            except (RegistryError, httpx.HTTPError) as exc:
                raise RegistryUnavailable(f"schema registry unavailable: {exc}") from exc
            self._codecs[topic.name] = codec
        return codec
