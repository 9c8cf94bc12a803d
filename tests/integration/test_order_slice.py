"""One order end to end through the real embedded stack.

HTTP gateway -> Kafka -> saga agents -> payment provider -> public Avro topic
-> JDBC sink stand-in -> Postgres, checked at every place a user would look.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.integration.conftest import Stack, auth, wait_for

pytestmark = pytest.mark.integration

SELLER = auth("seller-slice", "seller")
CUSTOMER = auth("customer-slice", "customer")


def seed(gateway: httpx.Client, sku: str, price: str, stock: int) -> None:
    r = gateway.put(
        f"/v1/products/{sku}",
        json={"name": f"Product {sku}", "price": price, "currency": "BRL"},
        headers=SELLER,
    )
    assert r.status_code == 202, r.text
    r = gateway.post(f"/v1/inventory/{sku}/restock", json={"quantity": stock}, headers=SELLER)
    assert r.status_code == 202, r.text
    wait_for(
        lambda: (
            gateway.get(f"/v1/inventory/{sku}", headers=SELLER).status_code == 200
            and gateway.get(f"/v1/inventory/{sku}", headers=SELLER).json()["on_hand"] == stock
        )
    )
    wait_for(lambda: gateway.get(f"/v1/products/{sku}", headers=SELLER).status_code == 200)


def place(gateway: httpx.Client, lines: list[tuple[str, int]], token: str = "tok_ok") -> str:
    r = gateway.post(
        "/v1/orders",
        json={
            "items": [{"sku": s, "quantity": q} for s, q in lines],
            "payment": {"method": "card", "token": token},
        },
        headers={**CUSTOMER, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "PENDING"
    return str(r.json()["order_id"])


def test_one_order_end_to_end(stack: Stack, gateway: httpx.Client) -> None:
    sku = f"SLICE-{uuid.uuid4().hex[:8]}"
    seed(gateway, sku, "12.34", 5)

    order_id = place(gateway, [(sku, 2)])
    order = gateway.get(f"/v1/orders/{order_id}", params={"wait": 30}, headers=CUSTOMER).json()

    assert order["status"] == "CONFIRMED", order
    assert order["reason"] is None
    assert order["lines"] == [{"sku": sku, "quantity": 2, "unit_price": "12.34"}]
    assert Decimal(order["total"]) == Decimal("24.68")
    assert order["currency"] == "BRL"
    # The commit reaches the sku's partition one hop after the confirmation.
    expected_stock = {"sku": sku, "on_hand": 3, "reserved": 0, "available": 3}
    wait_for(lambda: gateway.get(f"/v1/inventory/{sku}", headers=SELLER).json() == expected_stock)

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
        ends = {p.partition: consumer.get_watermark_offsets(p, timeout=10)[1] for p in partitions}
        consumer.assign(partitions)
        states, done = [], {p for p, end in ends.items() if end == 0}
        while len(done) < len(ends):
            message = consumer.poll(5)
            assert message is not None, "the orders topic ended early"
            assert message.error() is None, message.error()
            if message.offset() + 1 >= ends[message.partition()]:
                done.add(message.partition())
            key = keys(message.key(), SerializationContext("orders", MessageField.KEY))
            if key == order_id:
                states.append(
                    values(message.value(), SerializationContext("orders", MessageField.VALUE))
                )
        return states
    finally:
        consumer.close()
