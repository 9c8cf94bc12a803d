"""Commands the gateway sends: how they are built, identified and published.

The builders return the typed envelopes of `schemas.envelopes` (plain dicts in
fastavro's shape, union payloads as `(branch name, record)` tuples from the
`schemas.messages` builders); `CommandPublisher` encodes them with the topic's
registered schema and hands the bytes to the producer, keyed the way
`core.topics` says.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

import httpx
from prometheus_client import Counter
from pydantic import BaseModel

from core.topics import COMMAND_TOPICS, TopicSpec, value_codec
from gateway.auth import Principal
from gateway.models import PlaceOrderRequest, ProductUpsert
from gateway.producer import CommandProducer
from schemas import messages
from schemas.codec import AvroCodec
from schemas.envelopes import inventory_command, order_command
from schemas.errors import RegistryError, RegistryUnavailable
from schemas.generate_messages import constant
from schemas.messages import ROLE_SYMBOLS, InventoryCommand, OrderCommand, Role
from schemas.money import CENT
from schemas.serdes import Serdes

# Fixed forever: order ids of already placed orders are derived from it.
ORDER_ID_NAMESPACE = uuid.UUID("6d0f3b1c-2a4e-5b7d-9c8e-4f1a2b3c4d5e")

# Any envelope the gateway sends (CartCommand, InventoryCommand, OrderCommand, ...).
Command = Mapping[str, Any]


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


# The token's roles (lower case) as the `momentum.Role` symbols commands carry.
AVRO_ROLES: dict[str, Role] = {symbol.lower(): symbol for symbol in ROLE_SYMBOLS}


def avro_role(principal: Principal) -> Role:
    """The principal's role as the `momentum.Role` symbol commands carry."""
    return AVRO_ROLES[principal.role.value]


def upsert_product_command(
    sku: str, product: ProductUpsert, principal: Principal
) -> InventoryCommand:
    """UpsertProduct from `principal`; whether they may is the inventory agent's decision."""
    transfer_to = product.seller_id if product.seller_id != principal.sub else None
    payload = messages.upsert_product(
        name=product.name,
        price=product.price.quantize(CENT),
        currency=product.currency,
        seller_id=principal.sub,
        low_stock_threshold=product.low_stock_threshold,
        role=avro_role(principal),
        transfer_to=transfer_to,
    )
    return inventory_command(sku, payload)


def restock_command(sku: str, quantity: int, principal: Principal) -> InventoryCommand:
    payload = messages.restock(
        quantity=quantity, requested_by=principal.sub, role=avro_role(principal)
    )
    return inventory_command(sku, payload)


def place_order_command(
    order_id: str, customer_id: str, order: PlaceOrderRequest, hash_: str
) -> OrderCommand:
    payload = messages.place_order(
        customer_id=customer_id,
        lines=[{"sku": i.sku, "quantity": i.quantity} for i in order.items],
        payment={"method": order.payment.method, "token": order.payment.token},
        request_hash=hash_,
    )
    return order_command(order_id, payload)


def cancel_order_command(order_id: str, principal: Principal) -> OrderCommand:
    payload = messages.cancel_order(requested_by=principal.sub, role=avro_role(principal))
    return order_command(order_id, payload)


def client_command_topics(topics: tuple[TopicSpec, ...] = COMMAND_TOPICS) -> tuple[TopicSpec, ...]:
    """The command topics whose envelopes carry client commands: those the gateway sends to.

    Derived, so a flow's new command topic needs no entry here: a client command
    is a `momentum.CommandKind` symbol (what a rejection names), its branch
    constant in `schemas.messages` has the same name, and a topic carries it when
    its value record's payload union (`<RECORD>_PAYLOAD_BRANCHES`) lists it.
    """
    client = {getattr(messages, kind) for kind in messages.COMMAND_KIND_SYMBOLS}
    return tuple(
        topic
        for topic in topics
        if client & set(getattr(messages, f"{constant(topic.value_record)}_PAYLOAD_BRANCHES", ()))
    )


class CommandPublisher:
    """Encodes commands and sends them, keyed by the topic's key field."""

    def __init__(
        self, serdes: Serdes, producer: CommandProducer, sent: Counter | None = None
    ) -> None:
        self._serdes = serdes
        self._producer = producer
        self._sent = sent
        self._codecs: dict[str, AvroCodec] = {}

    async def prepare(self) -> None:
        """Register the command schemas now, so the first request does not wait."""
        for topic in client_command_topics():
            await self._codec(topic)

    async def publish(self, topic: TopicSpec, command: Command) -> None:
        codec = await self._codec(topic)
        await self._producer.send(topic.name, command[topic.key], codec.encode(command))
        if self._sent is not None:
            self._sent.labels(topic.name).inc()

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
