"""The Confluent wire-format codec: round trips, evolution, and every malformed input."""

from __future__ import annotations

import io
import json
import struct
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import fastavro
import pytest

from schemas import load_schema, messages, record_names, schema_text
from schemas.codec import AvroCodec, DecodeError, DecodeReason, EncodeError
from schemas.serdes import InMemoryRegistry, Serdes

NOW = datetime(2026, 11, 23, 12, 0, 0, 123000, tzinfo=UTC)

PLACE = {
    "command_id": "c-1",
    "order_id": "o-1",
    "issued_at": NOW,
    "payload": (
        messages.PLACE_ORDER,
        {
            "customer_id": "ana",
            "lines": [{"sku": "TEE-1", "quantity": 2}, {"sku": "MUG-1", "quantity": 1}],
            "payment": {"method": "card", "token": "tok_ok"},
            "request_hash": "abc",
        },
    ),
}
ORDER = {
    "order_id": "o-1",
    "customer_id": "ana",
    "status": "CONFIRMED",
    "reason": None,
    "total": Decimal("24.68"),
    "currency": "BRL",
    "line_count": 1,
    "created_at": NOW,
    "updated_at": NOW,
}


@pytest.fixture
def serdes() -> Serdes:
    return Serdes(InMemoryRegistry())


@pytest.mark.parametrize(
    ("record", "value"),
    [("OrderCommand", PLACE), ("OrderRecord", ORDER), ("string", "o-1")],
)
def test_round_trip(serdes: Serdes, record: str, value: Any) -> None:
    codec = serdes.codec(f"t-{record}", record)
    data = codec.encode(value)
    assert data[0] == 0
    assert struct.unpack(">I", data[1:5])[0] == codec.schema_id
    assert codec.decode(data) == value


def test_same_schema_same_id_across_subjects(serdes: Serdes) -> None:
    a = serdes.codec("orders-value", "OrderRecord")
    b = serdes.codec("other-value", "OrderRecord")
    assert a.schema_id == b.schema_id
    assert serdes.codec("orders-key", "string").schema_id != a.schema_id


def test_every_schema_file_loads_and_inlines_its_references() -> None:
    for name in record_names():
        text = schema_text(name)
        assert '"momentum.' in text or name.startswith("momentum.")
        assert load_schema(name)


def test_decimal_and_timestamp_logical_types_survive(serdes: Serdes) -> None:
    codec = serdes.codec("orders-value", "OrderRecord")
    decoded = codec.decode(codec.encode({**ORDER, "total": Decimal("0.10")}))
    assert decoded["total"] == Decimal("0.10")
    assert decoded["created_at"] == NOW


def test_older_writer_decodes_into_the_current_schema() -> None:
    # A producer still on a PlaceOrder without `request_hash` (which has a default).
    registry = InMemoryRegistry()
    current = load_schema("PlaceOrder")
    assert isinstance(current, dict)
    old = {**current, "fields": [f for f in current["fields"] if f["name"] != "request_hash"]}
    old_id = registry.register("place-value", json.dumps(old))
    body = io.BytesIO()
    fastavro.schemaless_writer(
        body,
        fastavro.parse_schema(old),
        {"customer_id": "ana", "lines": [], "payment": {"method": "card", "token": "t"}},
    )
    data = struct.pack(">bI", 0, old_id) + body.getvalue()

    reader = AvroCodec("PlaceOrder", old_id + 1, registry.schema_by_id)
    assert reader.decode(data)["request_hash"] == ""


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", DecodeReason.EMPTY),
        (None, DecodeReason.EMPTY),
        (b'{"json": true}', DecodeReason.BAD_MAGIC),
        (b"\x01\x00\x00\x00\x01\x02", DecodeReason.BAD_MAGIC),
        (b"\x00\x00\x01", DecodeReason.BAD_MAGIC),  # shorter than the header
        (b"\x00" + struct.pack(">I", 424242) + b"\x02a", DecodeReason.UNKNOWN_SCHEMA_ID),
    ],
)
def test_malformed_headers(serdes: Serdes, data: bytes | None, reason: DecodeReason) -> None:
    codec = serdes.codec("orders-value", "OrderRecord")
    with pytest.raises(DecodeError) as caught:
        codec.decode(data)
    assert caught.value.reason is reason


def test_truncated_and_trailing_bytes_are_malformed(serdes: Serdes) -> None:
    codec = serdes.codec("orders-value", "OrderRecord")
    data = codec.encode(ORDER)
    for broken in (data[:-3], data + b"\x00\x01", data[:5] + b"\xff" * 12):
        with pytest.raises(DecodeError) as caught:
            codec.decode(broken)
        assert caught.value.reason is DecodeReason.MALFORMED


def test_encode_rejects_values_that_do_not_fit(serdes: Serdes) -> None:
    codec = serdes.codec("orders-value", "OrderRecord")
    with pytest.raises(EncodeError):
        codec.encode({**ORDER, "status": "SHIPPED"})
    with pytest.raises(EncodeError):
        codec.encode({k: v for k, v in ORDER.items() if k != "customer_id"})
