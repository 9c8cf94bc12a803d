"""Faust topic objects for the registry's topics: raw bytes in and out.

Values are Confluent wire-format Avro that the agents decode themselves, so a
message that does not decode reaches the dead letters instead of stopping the
agent (Faust's own decode errors would end the stream).
"""

from __future__ import annotations

from functools import cache

import faust

from core.app import app
from core.topics import TopicSpec


@cache
def channel(spec: TopicSpec) -> faust.TopicT:
    return app.topic(
        spec.name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=spec.partitions,
    )


@cache
def dead_letter_channel(spec: TopicSpec) -> faust.TopicT:
    return app.topic(
        spec.dlq,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=1,
    )
