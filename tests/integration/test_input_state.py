"""Stock counts end to end on the embedded stack: bounded at the edge, never overflowing.

Two restocks of 2^31 - 1 used to leave 4294967294 on hand in the worker while the sink
dead-lettered the row ("integer out of range"). Now the gateway bounds a restock, and
whatever a producer sends within the Avro `int` of a Restock lands exactly, in the worker
and in Postgres (bigint columns).
"""

from __future__ import annotations

import uuid

import httpx
import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from core.topics import INVENTORY_COMMANDS, value_codec
from gateway.models import MAX_RESTOCK_QUANTITY
from schemas import envelopes, messages
from schemas.registry import SchemaRegistryClient
from schemas.serdes import Serdes
from tests.integration.conftest import Stack, wait_for
from tests.integration.shop import SELLER, Shop, unique_sku

pytestmark = pytest.mark.integration

INT_MAX = 2**31 - 1


def postgres_stock(stack: Stack, sku: str) -> tuple[int, int, int] | None:
    with psycopg.connect(stack.database_url) as conn:
        try:
            row = conn.execute(
                'SELECT "on_hand", "reserved", "available" FROM "inventory" WHERE "sku" = %s',
                (sku,),
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return None if row is None else (int(row[0]), int(row[1]), int(row[2]))


def sink_dead_letters_for(stack: Stack, topic: str, sku: str) -> list[bytes]:
    """Records of `sku` in the sink's dead-letter topic (its keys are the Avro-encoded sku)."""
    consumer = Consumer(
        {
            "bootstrap.servers": stack.bootstrap,
            "group.id": f"t-{uuid.uuid4()}",
            "enable.auto.commit": False,
        }
    )
    found: list[bytes] = []
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return found
        for partition in metadata.partitions:
            tp = TopicPartition(topic, partition, 0)
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, partition, low)])
            for _ in range(high - low):
                message = consumer.poll(5)
                if message is None:
                    break
                if message.error() is None and sku.encode() in (message.key() or b""):
                    found.append(message.key() or b"")
    finally:
        consumer.close()
    return found


def test_two_max_restocks_through_the_gateway_land_exactly(
    stack: Stack, shop: Shop, gateway: httpx.Client
) -> None:
    sku = unique_sku("MAXR")
    shop.seed(sku, "1.00", 0)
    for _ in range(2):
        r = gateway.post(
            f"/v1/inventory/{sku}/restock", json={"quantity": MAX_RESTOCK_QUANTITY}, headers=SELLER
        )
        assert r.status_code == 202, r.text
    over = gateway.post(f"/v1/inventory/{sku}/restock", json={"quantity": INT_MAX}, headers=SELLER)
    assert over.status_code == 422, over.text

    total = 2 * MAX_RESTOCK_QUANTITY
    assert shop.wait_stock(sku, total, 0)["available"] == total
    assert wait_for(lambda: postgres_stock(stack, sku) == (total, 0, total))


def test_restocks_beyond_a_32_bit_total_land_exactly_in_the_worker_and_postgres(
    stack: Stack, shop: Shop
) -> None:
    """Any producer may send a Restock up to the Avro int; the sum must not overflow anywhere."""
    sku = unique_sku("BIG")
    shop.seed(sku, "1.00", 0)
    codec = value_codec(INVENTORY_COMMANDS, Serdes(SchemaRegistryClient(stack.registry_url)))
    # murmur2, as Kafka's Java clients and aiokafka partition: the sku's own partition
    # (librdkafka's default, consistent_random, would put the key elsewhere).
    producer = Producer({"bootstrap.servers": stack.bootstrap, "partitioner": "murmur2_random"})
    for _ in range(2):
        command = envelopes.inventory_command(
            sku, messages.restock(quantity=INT_MAX, requested_by="seller-tests", role="SELLER")
        )
        producer.produce(INVENTORY_COMMANDS.name, key=sku.encode(), value=codec.encode(command))
    assert producer.flush(10) == 0

    total = 2 * INT_MAX  # 4294967294: beyond a Postgres integer
    assert shop.wait_stock(sku, total, 0)["available"] == total
    assert wait_for(lambda: postgres_stock(stack, sku) == (total, 0, total))

    # Orders still work on it, and the row keeps updating.
    settled = shop.settled(shop.order_id([(sku, 3)]))
    assert settled["status"] == "CONFIRMED", settled
    shop.wait_stock(sku, total - 3, 0)
    assert wait_for(lambda: postgres_stock(stack, sku) == (total - 3, 0, total - 3))
    assert sink_dead_letters_for(stack, "inventory.connect-dlq", sku) == []
