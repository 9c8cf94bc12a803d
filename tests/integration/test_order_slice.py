"""One order end to end through the real embedded stack.

HTTP gateway -> Kafka -> saga agents -> payment provider -> public Avro topic
-> JDBC sink stand-in -> Postgres, checked at every place a user would look.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import (
    MessageField,
    SerializationContext,
    SerializationError,
)

from core.end_offsets import end_offsets
from tests.integration.conftest import Stack, wait_for
from tests.integration.shop import Shop, unique_sku

pytestmark = pytest.mark.integration


def test_one_order_end_to_end(stack: Stack, shop: Shop) -> None:
    sku = unique_sku("SLICE")
    shop.seed(sku, "12.34", 5)

    placed = shop.place([(sku, 2)])
    assert placed.status_code == 202, placed.text
    assert placed.json()["status"] == "PENDING"
    order_id = placed.json()["order_id"]
    order = shop.settled(order_id)

    assert order["status"] == "CONFIRMED", order
    assert order["reason"] is None
    assert order["lines"] == [{"sku": sku, "quantity": 2, "unit_price": "12.34"}]
    assert Decimal(order["total"]) == Decimal("24.68")
    assert order["currency"] == "BRL"
    # The commit reaches the sku's partition one hop after the confirmation.
    assert shop.wait_stock(sku, on_hand=3, reserved=0)["available"] == 3

    # The read model: the sink has written the settled order into Postgres.
    def row() -> tuple | None:
        with psycopg.connect(stack.database_url) as conn:
            try:
                return conn.execute(
                    "select status, total, currency from orders where order_id = %s", (order_id,)
                ).fetchone()
            except psycopg.errors.UndefinedTable:
                return None  # the sink creates the table with its first record

    assert wait_for(lambda: (r := row()) and r[0] == "CONFIRMED" and r) == (
        "CONFIRMED",
        Decimal("24.68"),
        "BRL",
    )

    # The public topic, decoded as an analyst would: confluent-kafka + the registry URL.
    assert public_order_states(stack, order_id)[-1]["status"] == "CONFIRMED"


def public_order_states(stack: Stack, order_id: str) -> list[dict]:
    registry = SchemaRegistryClient({"url": stack.registry_url})
    keys, values = AvroDeserializer(registry), AvroDeserializer(registry)
    consumer = Consumer(
        {
            "bootstrap.servers": stack.bootstrap,
            "group.id": f"t-{uuid.uuid4()}",
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics("orders", timeout=10).topics["orders"]
        partitions = [TopicPartition("orders", p, 0) for p in metadata.partitions]
        # The true ends: Tansu's ListOffsets answer stops at the last batch's base + 1.
        true_ends = end_offsets(
            {"bootstrap.servers": stack.bootstrap},
            [("orders", p.partition) for p in partitions],
            from_fetch=True,
        )
        ends = {partition: end for (_, partition), end in true_ends.items()}
        consumer.assign(partitions)
        states, done = [], {p for p, end in ends.items() if end == 0}
        while len(done) < len(ends):
            message = consumer.poll(5)
            assert message is not None, "the orders topic ended early"
            assert message.error() is None, message.error()
            if message.offset() + 1 >= ends[message.partition()]:
                done.add(message.partition())
            try:
                key = keys(message.key(), SerializationContext("orders", MessageField.KEY))
            except SerializationError:
                continue  # the dead-letter tests put undecodable records here on purpose
            if key == order_id:
                states.append(
                    values(message.value(), SerializationContext("orders", MessageField.VALUE))
                )
        return states
    finally:
        consumer.close()


def test_the_registry_serves_the_confluent_client(stack: Stack) -> None:
    registry = SchemaRegistryClient({"url": stack.registry_url})
    subjects = registry.get_subjects()
    for topic in ("orders", "order-commands", "inventory-commands"):
        assert f"{topic}-value" in subjects
    assert "orders-key" in subjects

    latest = registry.get_latest_version("orders-value")
    assert registry.get_schema(latest.schema_id).schema_str == latest.schema.schema_str
    assert registry.get_versions("orders-value") == [latest.version]
    # The schema as it is now is compatible with itself (BACKWARD).
    assert registry.test_compatibility("orders-value", latest.schema) is True
