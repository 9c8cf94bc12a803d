"""Sending commands and publishing public records, encoded once per message.

Every message carries the correlation id of the message being handled (core.observe).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from core.observe import outgoing_headers
from core.topics import TopicSpec, key_codec, value_codec
from streams import metrics
from streams.channels import channel


def now() -> datetime:
    return datetime.now(UTC)


async def send(spec: TopicSpec, key: str, value: Mapping[str, Any]) -> None:
    """An internal command or event: UTF-8 key, Avro value."""
    await channel(spec).send(
        key=key.encode(), value=value_codec(spec).encode(value), headers=outgoing_headers()
    )
    metrics.sent(spec.name).inc()


async def publish(spec: TopicSpec, key: str, value: Mapping[str, Any] | None) -> None:
    """A public record: Avro key and value; None is a tombstone (the record is gone)."""
    encoded = None if value is None else value_codec(spec).encode(value)
    await channel(spec).send(
        key=key_codec(spec).encode(key), value=encoded, headers=outgoing_headers()
    )
    metrics.sent(spec.name).inc()
