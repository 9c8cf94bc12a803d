"""Codecs by subject, registered with the schema registry once and cached.

Subjects follow TopicNameStrategy (`<topic>-key`, `<topic>-value`). Registration
is lazy (first use) and `register_all` does it eagerly at start-up, so the hot
path never calls the registry.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from schemas import schema_text
from schemas.codec import AvroCodec


class Registry(Protocol):
    def register(self, subject: str, schema: str) -> int: ...
    def schema_by_id(self, schema_id: int) -> Any | None: ...


class Serdes:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._codecs: dict[str, AvroCodec] = {}
        self._lock = threading.Lock()

    def codec(self, subject: str, record_name: str) -> AvroCodec:
        codec = self._codecs.get(subject)
        if codec is None:
            with self._lock:
                codec = self._codecs.get(subject)
                if codec is None:
                    schema_id = self.registry.register(subject, schema_text(record_name))
                    codec = AvroCodec(record_name, schema_id, self.registry.schema_by_id)
                    self._codecs[subject] = codec
        return codec


class InMemoryRegistry:
    """Registry for unit tests: same schema text, same id."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._schemas: dict[int, str] = {}

    def register(self, subject: str, schema: str) -> int:
        if schema not in self._ids:
            self._ids[schema] = len(self._ids) + 1
            self._schemas[self._ids[schema]] = schema
        return self._ids[schema]

    def schema_by_id(self, schema_id: int) -> Any | None:
        import json

        text = self._schemas.get(schema_id)
        return json.loads(text) if text else None
