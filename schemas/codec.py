"""Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro binary.

Encoding uses the local (reader) schema, parsed once. Decoding resolves the
writer's schema by id (the local one, or one fetched once from the registry and
cached) and reads into the local schema, so older writers still decode.
Anything that is not a well-formed message of a known schema raises
`DecodeError`, whose `reason` goes into dead-letter headers.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import fastavro

from schemas import load_schema

MAGIC_BYTE = 0
HEADER = struct.Struct(">bI")

# Fetches a writer schema (parsed or raw) by id; returns None when the id is unknown.
WriterSchemaLookup = Callable[[int], Any | None]


class DecodeReason(StrEnum):
    EMPTY = "empty"
    BAD_MAGIC = "bad-magic-byte"
    UNKNOWN_SCHEMA_ID = "unknown-schema-id"
    MALFORMED = "malformed-avro"


class DecodeError(ValueError):
    def __init__(self, reason: DecodeReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class EncodeError(ValueError):
    """A value does not fit the schema: a bug in the producer, never bad input."""


def schema_id_of(data: bytes | None) -> int:
    """The writer's schema id of a wire-format message; DecodeError if it is not one."""
    if not data:
        raise DecodeError(DecodeReason.EMPTY, "no bytes")
    if len(data) < HEADER.size or data[0] != MAGIC_BYTE:
        raise DecodeError(DecodeReason.BAD_MAGIC, f"first byte {data[0]:#04x}, expected 0x00")
    _, schema_id = HEADER.unpack_from(data)
    return int(schema_id)


def read_record(data: bytes, writer: Any, reader: Any | None) -> Any:
    """The Avro body after the header, read with the writer's schema into the reader's."""
    buf = io.BytesIO(data)
    buf.seek(HEADER.size)
    try:
        value = fastavro.schemaless_reader(
            buf, writer, reader, return_record_name=True, return_record_name_override=True
        )
    except Exception as exc:  # fastavro raises many types on garbage input
        raise DecodeError(DecodeReason.MALFORMED, f"{type(exc).__name__}: {exc}") from exc
    if buf.tell() != len(data):
        raise DecodeError(
            DecodeReason.MALFORMED, f"{len(data) - buf.tell()} trailing bytes after the record"
        )
    return value


class AvroCodec:
    """Encodes and decodes one record type, registered under `schema_id`."""

    def __init__(
        self, record_name: str, schema_id: int, lookup: WriterSchemaLookup | None = None
    ) -> None:
        self.record_name = record_name
        self.schema_id = schema_id
        self.schema = fastavro.parse_schema(load_schema(record_name))
        self._header = HEADER.pack(MAGIC_BYTE, schema_id)
        self._lookup = lookup
        self._writers: dict[int, Any] = {schema_id: self.schema}

    def encode(self, value: Any) -> bytes:
        buf = io.BytesIO()
        buf.write(self._header)
        try:
            fastavro.schemaless_writer(buf, self.schema, value)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise EncodeError(f"{self.record_name}: {exc}") from exc
        return buf.getvalue()

    def decode(self, data: bytes | None) -> Any:
        writer = self._writer_schema(schema_id_of(data))
        assert data is not None
        return read_record(data, writer, self.schema)

    def _writer_schema(self, schema_id: int) -> Any:
        if schema_id in self._writers:
            return self._writers[schema_id]
        found = self._lookup(schema_id) if self._lookup else None
        if found is None:
            raise DecodeError(DecodeReason.UNKNOWN_SCHEMA_ID, f"schema id {schema_id}")
        parsed = fastavro.parse_schema(found)
        self._writers[schema_id] = parsed
        return parsed
