"""Bad bytes on a command topic reach its dead-letter topic; the worker keeps going."""

from __future__ import annotations

import struct
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from core.end_offsets import end_offsets
from tests.integration.conftest import Stack, wait_for
from tests.integration.shop import Shop, unique_sku

pytestmark = pytest.mark.integration


def dead_letters(stack: Stack, topic: str) -> list[dict]:
    consumer = Consumer(
        {
            "bootstrap.servers": stack.bootstrap,
            "group.id": f"t-{uuid.uuid4()}",
            "enable.auto.commit": False,
        }
    )
    try:
        tp = TopicPartition(topic, 0, 0)
        # The true end: Tansu's ListOffsets answer stops at the last batch's base + 1.
        config = {"bootstrap.servers": stack.bootstrap}
        end = end_offsets(config, [(topic, 0)], from_fetch=True)[(topic, 0)]
        consumer.assign([tp])
        letters = []
        while len(letters) < end:
            message = consumer.poll(5)
            assert message is not None and message.error() is None
            letters.append(
                {
                    "key": message.key(),
                    "value": message.value(),
                    "headers": {k: v.decode() for k, v in message.headers() or []},
                }
            )
        return letters
    finally:
        consumer.close()


@pytest.mark.parametrize(
    ("case", "value", "error"),
    [
        ("not avro", b"this is not avro", "bad-magic-byte"),
        ("unknown schema id", b"\x00" + struct.pack(">I", 999_999) + b"\x02", "unknown-schema-id"),
        ("truncated record", b"\x00" + struct.pack(">I", 1) + b"\x08ab", "malformed-avro"),
        ("empty value", b"", "empty"),
    ],
)
def test_malformed_command_is_dead_lettered(
    stack: Stack, shop: Shop, case: str, value: bytes, error: str
) -> None:
    key = f"dlq-{uuid.uuid4()}".encode()
    producer = Producer({"bootstrap.servers": stack.bootstrap})
    correlation_id = f"dlq-test-{uuid.uuid4().hex}".encode()
    producer.produce(
        "order-commands", key=key, value=value, headers=[("correlation.id", correlation_id)]
    )
    assert producer.flush(10) == 0

    def arrived() -> dict | None:
        return next((d for d in dead_letters(stack, "order-commands.dlq") if d["key"] == key), None)

    letter = wait_for(arrived)
    headers = letter["headers"]
    assert letter["value"] == value
    assert headers["dlq.error"] == error, headers
    assert headers["dlq.source.topic"] == "order-commands"
    assert int(headers["dlq.source.partition"]) >= 0
    assert int(headers["dlq.source.offset"]) >= 0
    assert headers["dlq.detail"]
    # The letter keeps the correlation id of the message, so a replay still follows it.
    assert headers["correlation.id"] == correlation_id.decode()

    # The worker is still processing orders after the bad message.
    sku = unique_sku("DLQ")
    shop.seed(sku, "1.00", 1)
    assert shop.settled(shop.order_id([(sku, 1)]))["status"] == "CONFIRMED"
