"""Where an order's time goes, hop by hop, read from the timestamps of its records.

Every record carries the time its producer created it. For the orders placed since
some offsets, this reads the saga's topics from those offsets and gives, for each
step (a record kind on a topic: `payment-commands: AuthorizePayment`,
`orders: CONFIRMED`...), the median milliseconds after the order's PlaceOrder
record. The difference between two successive steps is one hop and its handling.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from core.topics import ORDER_COMMANDS, ORDER_EVENTS, ORDERS, PAYMENT_COMMANDS, value_codec

# The topics on an order's path that name the order in their values; inventory
# commands name the sku (their hop ends in the StockReserved order event).
PATH = (ORDER_COMMANDS, ORDER_EVENTS, PAYMENT_COMMANDS, ORDERS)
START = "order-commands: PlaceOrder"


def step_of(topic: str, value: Mapping[str, Any]) -> str:
    if "payload" not in value:  # a public record: its status
        return f"{topic}: {value['status']}"
    record, body = value["payload"]
    name = record.rsplit(".", 1)[-1]
    return f"{topic}: {name} {body['status']}" if "status" in body else f"{topic}: {name}"


def first_times(records: list[tuple[str, str, int]]) -> dict[str, dict[str, int]]:
    """(order id, step, timestamp ms) records -> each order's first time at each step."""
    orders: dict[str, dict[str, int]] = {}
    for order_id, step, at in records:
        steps = orders.setdefault(order_id, {})
        steps[step] = min(at, steps.get(step, at))
    return orders


def median_after_start(orders: Mapping[str, Mapping[str, int]]) -> dict[str, float]:
    """Each step's median ms after PlaceOrder, over the orders whose PlaceOrder was read;
    steps in the order of their medians."""
    after: dict[str, list[int]] = {}
    for steps in orders.values():
        if START not in steps:
            continue
        for step, at in steps.items():
            after.setdefault(step, []).append(at - steps[START])
    medians = {step: float(statistics.median(times)) for step, times in after.items()}
    return dict(sorted(medians.items(), key=lambda item: item[1]))


def read_path(
    bootstrap: str,
    since: Mapping[tuple[str, int], int],
    until: Mapping[tuple[str, int], int],
    timeout: float = 60.0,
) -> list[tuple[str, str, int]]:
    """(order id, step, timestamp ms) of the path's records between two sets of offsets."""
    codecs = {spec.name: value_codec(spec) for spec in PATH}
    wanted = {tp: end for tp, end in until.items() if tp[0] in codecs and end > since.get(tp, 0)}
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "bench-hop-times", "fetch.wait.max.ms": 50}
    )
    consumer.assign([TopicPartition(t, p, since.get((t, p), 0)) for t, p in wanted])
    records = []
    deadline = time.monotonic() + timeout
    try:
        while wanted:
            if time.monotonic() > deadline:
                raise TimeoutError(f"hop times: {sorted(wanted)} not read to their ends")
            for message in consumer.consume(1000, 1.0):
                if message.error():
                    continue
                topic, partition, offset = message.topic(), message.partition(), message.offset()
                # Consumed records without an error always carry their coordinates.
                assert topic is not None and partition is not None and offset is not None
                value = codecs[topic].decode(message.value())
                records.append((value["order_id"], step_of(topic, value), message.timestamp()[1]))
                if offset + 1 >= wanted.get((topic, partition), 0):
                    wanted.pop((topic, partition), None)
    finally:
        consumer.close()
    return records
