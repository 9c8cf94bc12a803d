"""Sending commands and publishing public records, encoded once per message.

Every message carries the correlation id of the message being handled (core.observe).
A delivery the producer gave up on is counted (`failed_deliveries`): Faust only logs
it, and the saga must then send its outboxes again (streams.orders.agents).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from core.observe import outgoing_headers
from core.topics import TopicSpec, key_codec, value_codec
from streams import metrics
from streams.channels import channel

_failed_deliveries = 0


def failed_deliveries() -> int:
    """Messages of this process whose delivery failed, so far."""
    return _failed_deliveries


def _on_delivery(topic: str, delivery: asyncio.Future[Any]) -> None:
    global _failed_deliveries
    if not delivery.cancelled() and delivery.exception() is not None:
        _failed_deliveries += 1
        metrics.SEND_FAILURES.labels(topic=topic).inc()


def now() -> datetime:
    return datetime.now(UTC)


async def send(spec: TopicSpec, key: str, value: Mapping[str, Any]) -> None:
    """An internal command or event: UTF-8 key, Avro value."""
    delivery = await channel(spec).send(
        key=key.encode(), value=value_codec(spec).encode(value), headers=outgoing_headers()
    )
    _count(spec.name, delivery)


async def publish(spec: TopicSpec, key: str, value: Mapping[str, Any] | None) -> None:
    """A public record: Avro key and value; None is a tombstone (the record is gone)."""
    encoded = None if value is None else value_codec(spec).encode(value)
    delivery = await channel(spec).send(
        key=key_codec(spec).encode(key), value=encoded, headers=outgoing_headers()
    )
    _count(spec.name, delivery)


def _count(topic: str, delivery: Awaitable[Any]) -> None:
    """Count the message sent, and its delivery if it fails (Faust hands back a future)."""
    metrics.sent(topic).inc()
    asyncio.ensure_future(delivery).add_done_callback(partial(_on_delivery, topic))
