"""Confluent wire-format decoding with writer schemas from the registry, as AvroConverter does.

The sink has no schemas of its own: each message names its writer schema by
id, which is fetched once from the registry and cached, and the value is read
with that schema. An unknown id or malformed bytes is the record's fault
(`DecodeError`, dead-lettered); a registry that cannot be reached is not
(`RegistryUnavailable`, retried).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastavro
import httpx

from schemas.codec import DecodeError, DecodeReason, read_record, schema_id_of
from schemas.errors import RegistryError, RegistryUnavailable

SchemaLookup = Callable[[int], Any | None]


@dataclass(frozen=True)
class WriterSchema:
    schema_id: int
    schema: Any  # the JSON schema as registered (for the table mapping)
    parsed: Any  # fastavro's parsed form (for reading)


class WriterSchemas:
    """Writer schemas by id, fetched from the registry once; shared by the sink's threads."""

    def __init__(self, lookup: SchemaLookup) -> None:
        self._lookup = lookup
        self._cache: dict[int, WriterSchema] = {}
        self._lock = threading.Lock()

    def get(self, schema_id: int) -> WriterSchema:
        found = self._cache.get(schema_id)
        if found is not None:
            return found
        with self._lock:
            found = self._cache.get(schema_id)
            if found is None:
                try:
                    schema = self._lookup(schema_id)
                except httpx.HTTPError as exc:
                    raise RegistryUnavailable(f"schema registry: {exc}") from exc
                except RegistryError as exc:
                    if exc.http_status >= 500:
                        raise RegistryUnavailable(str(exc)) from exc
                    raise DecodeError(DecodeReason.UNKNOWN_SCHEMA_ID, str(exc)) from exc
                if schema is None:
                    raise DecodeError(DecodeReason.UNKNOWN_SCHEMA_ID, f"schema id {schema_id}")
                try:
                    parsed = fastavro.parse_schema(schema)
                except Exception as exc:  # a registered schema fastavro cannot read
                    raise DecodeError(
                        DecodeReason.UNKNOWN_SCHEMA_ID, f"schema id {schema_id}: {exc}"
                    ) from exc
                found = WriterSchema(schema_id, schema, parsed)
                self._cache[schema_id] = found
        return found


def decode(data: bytes | None, schemas: WriterSchemas) -> tuple[WriterSchema, Any]:
    """The writer schema and the value of one message in the Confluent wire format."""
    writer = schemas.get(schema_id_of(data))
    assert data is not None
    return writer, read_record(data, writer.parsed, None)
