"""Wire-format decoding with writer schemas looked up by id, as AvroConverter does."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from schemas.codec import DecodeError, DecodeReason
from schemas.errors import RegistryError, RegistryUnavailable
from schemas.serdes import InMemoryRegistry, Serdes
from sinks.decode import WriterSchemas, decode

ORDER = {
    "order_id": "o-1",
    "customer_id": "c-1",
    "status": "CONFIRMED",
    "reason": None,
    "total": Decimal("12.50"),
    "currency": "EUR",
    "line_count": 2,
    "created_at": datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
    "updated_at": datetime(2026, 11, 23, 12, 1, tzinfo=UTC),
}


@pytest.fixture
def registry() -> InMemoryRegistry:
    return InMemoryRegistry()


def encoded_order(registry: InMemoryRegistry) -> bytes:
    return Serdes(registry).codec("orders-value", "OrderRecord").encode(ORDER)


def test_values_decode_with_the_writer_schema(registry: InMemoryRegistry) -> None:
    writer, value = decode(encoded_order(registry), WriterSchemas(registry.schema_by_id))
    assert value == ORDER  # enums as strings, decimals, aware UTC timestamps
    assert writer.schema["name"] in ("OrderRecord", "momentum.OrderRecord")


def test_keys_decode_too(registry: InMemoryRegistry) -> None:
    key = Serdes(registry).codec("orders-key", "string").encode("o-1")
    writer, value = decode(key, WriterSchemas(registry.schema_by_id))
    assert (writer.schema, value) == ("string", "o-1")


def test_writer_schemas_are_fetched_once(registry: InMemoryRegistry) -> None:
    calls: list[int] = []

    def lookup(schema_id: int) -> Any:
        calls.append(schema_id)
        return registry.schema_by_id(schema_id)

    schemas = WriterSchemas(lookup)
    data = encoded_order(registry)
    for _ in range(3):
        decode(data, schemas)
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", DecodeReason.EMPTY),
        (b"garbage", DecodeReason.BAD_MAGIC),
        (b"\x00\x00\x00", DecodeReason.BAD_MAGIC),
        (b"\x00\x00\x00\x03\xe7" + b"x", DecodeReason.UNKNOWN_SCHEMA_ID),
    ],
)
def test_bad_bytes_are_the_records_fault(
    registry: InMemoryRegistry, data: bytes, reason: DecodeReason
) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(data, WriterSchemas(registry.schema_by_id))
    assert caught.value.reason is reason


def test_truncated_and_padded_records_are_malformed(registry: InMemoryRegistry) -> None:
    data = encoded_order(registry)
    for broken in (data[:-3], data + b"\x00"):
        with pytest.raises(DecodeError) as caught:
            decode(broken, WriterSchemas(registry.schema_by_id))
        assert caught.value.reason is DecodeReason.MALFORMED


@pytest.mark.parametrize(
    "failure", [httpx.ConnectError("refused"), RegistryError(503, 50001, "unavailable")]
)
def test_an_unreachable_registry_is_not_the_records_fault(
    registry: InMemoryRegistry, failure: Exception
) -> None:
    def lookup(schema_id: int) -> Any:
        raise failure

    with pytest.raises(RegistryUnavailable):
        decode(encoded_order(registry), WriterSchemas(lookup))


def test_a_registry_404_is_an_unknown_schema(registry: InMemoryRegistry) -> None:
    def lookup(schema_id: int) -> Any:
        raise RegistryError(404, 40403, "Schema not found")

    with pytest.raises(DecodeError) as caught:
        decode(encoded_order(registry), WriterSchemas(lookup))
    assert caught.value.reason is DecodeReason.UNKNOWN_SCHEMA_ID
