"""Stock counts cannot overflow: Avro long in every record that carries one, bigint in Postgres.

Two restocks of 2^31 - 1 used to put 4294967294 in the worker (Python ints) and a row the
sink could not write ("integer out of range"). Every layer is checked here; the embedded
stack test (tests/integration/test_input_state.py) sends the restocks end to end.

The widened schemas must still follow the ones already registered: the registry (and the
stand-in) enforce BACKWARD, and int -> long is a promotion Avro readers apply.
"""

from __future__ import annotations

import copy
import io
import json
import struct
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import fastavro
import pytest

from gateway.models import MAX_RESTOCK_QUANTITY
from momentum.registry_store import MemoryStore
from schemas import load_schema
from schemas.codec import AvroCodec
from schemas.serdes import InMemoryRegistry
from sinks.ddl import table_shape
from streams.inventory import rules
from streams.inventory.records import inventory_record, stock_from_state, stock_to_state

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
INT_MAX = 2**31 - 1
TWICE_INT_MAX = 2 * INT_MAX  # 4294967294

# The versions on main before stock counts became longs (as registered then).
OLD_STOCK_STATE: dict[str, Any] = {
    "type": "record",
    "name": "StockState",
    "namespace": "momentum",
    "fields": [
        {"name": "sku", "type": "string"},
        {"name": "on_hand", "type": "int"},
        {"name": "reservations", "type": {"type": "map", "values": "int"}},
        {"name": "committed", "type": {"type": "map", "values": "int"}, "default": {}},
        {"name": "low_stock_threshold", "type": "int", "default": 5},
        {
            "name": "recent_commands",
            "type": {"type": "array", "items": "string"},
            "default": [],
        },
        {"name": "closed_orders", "type": {"type": "array", "items": "string"}, "default": []},
        {"name": "updated_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}
OLD_INVENTORY_RECORD: dict[str, Any] = {
    "type": "record",
    "name": "InventoryRecord",
    "namespace": "momentum",
    "fields": [
        {"name": "sku", "type": "string"},
        {"name": "on_hand", "type": "int"},
        {"name": "reserved", "type": "int"},
        {"name": "available", "type": "int"},
        {"name": "updated_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}
OLD_STOCK_ALERT: dict[str, Any] = {
    "type": "record",
    "name": "StockAlert",
    "namespace": "momentum",
    "fields": [
        {"name": "sku", "type": "string"},
        {"name": "seller_id", "type": ["null", "string"], "default": None},
        {"name": "available", "type": "int"},
        {"name": "threshold", "type": "int"},
        {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}


def old_inventory_command() -> dict[str, Any]:
    """InventoryCommand before `origin`, with ReturnStock before `quantity`."""
    current = copy.deepcopy(load_schema("InventoryCommand"))
    assert isinstance(current, dict)
    current["fields"] = [f for f in current["fields"] if f["name"] != "origin"]
    [payload] = [f for f in current["fields"] if f["name"] == "payload"]
    for branch in payload["type"]:
        if branch["name"] == "ReturnStock":
            branch["fields"] = [f for f in branch["fields"] if f["name"] != "quantity"]
    return current


CHANGED = [
    ("StockState", OLD_STOCK_STATE),
    ("InventoryRecord", OLD_INVENTORY_RECORD),
    ("StockAlert", OLD_STOCK_ALERT),
    ("InventoryCommand", old_inventory_command()),
]


@pytest.mark.parametrize(("record", "old"), CHANGED, ids=[r for r, _ in CHANGED])
def test_widened_schemas_register_after_the_old_ones_under_backward(
    record: str, old: dict[str, Any]
) -> None:
    store = MemoryStore()
    store.start()
    subject = f"{record}-value"
    first = store.register(subject, json.dumps(old))
    second = store.register(subject, json.dumps(load_schema(record)))
    assert second != first
    assert store.versions(subject) == [1, 2]


# Every field that holds a count of stock units (or a sum of them).
STOCK_COUNTS = [
    ("StockState", "on_hand"),
    ("StockState", "reservations"),  # map values
    ("InventoryRecord", "on_hand"),
    ("InventoryRecord", "reserved"),
    ("InventoryRecord", "available"),
    ("StockAlert", "available"),
]


@pytest.mark.parametrize(("record", "name"), STOCK_COUNTS)
def test_stock_counts_are_longs(record: str, name: str) -> None:
    schema = load_schema(record)
    assert isinstance(schema, dict)
    [field] = [f for f in schema["fields"] if f["name"] == name]
    kind = field["type"]
    assert (kind["values"] if isinstance(kind, dict) else kind) == "long"


def encode_with(schema: dict[str, Any], value: dict[str, Any]) -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema), value)
    return body.getvalue()


def test_old_stock_rows_decode_into_the_new_shape() -> None:
    registry = InMemoryRegistry()
    old_id = registry.register("inventory-changelog-value", json.dumps(OLD_STOCK_STATE))
    old_row = {
        "sku": "tee",
        "on_hand": INT_MAX,
        "reservations": {"o1": 2},
        "committed": {"o0": 5},
        "low_stock_threshold": 5,
        "recent_commands": ["r1"],
        "closed_orders": ["o9"],
        "updated_at": NOW,
    }
    data = struct.pack(">bI", 0, old_id) + encode_with(OLD_STOCK_STATE, old_row)
    codec = AvroCodec("StockState", old_id + 1, registry.schema_by_id)
    stock = stock_from_state("tee", codec.decode(data))
    assert stock == rules.Stock("tee", INT_MAX, {"o1": 2}, 5, ("r1",), {})


def test_two_max_int_restocks_round_trip_through_every_record() -> None:
    registry = InMemoryRegistry()
    stock = rules.restock(rules.restock(rules.Stock("tee"), "r1", INT_MAX), "r2", INT_MAX)
    product = rules.Product("tee", "Tee", Decimal("1.00"), "BRL", "s1")
    stock, _ = rules.decide_reservation(stock, product, "o1", 3, rules.Origin("order-events:0", 7))
    assert stock.on_hand == TWICE_INT_MAX
    for record, value in [
        ("StockState", stock_to_state(stock, NOW)),
        ("InventoryRecord", inventory_record(stock, NOW)),
        (
            "StockAlert",
            {
                "sku": "tee",
                "seller_id": None,
                "available": stock.available,
                "threshold": 5,
                "occurred_at": NOW,
            },
        ),
    ]:
        schema_id = registry.register(f"{record}-value", json.dumps(load_schema(record)))
        codec = AvroCodec(record, schema_id, registry.schema_by_id)
        assert codec.decode(codec.encode(value)) == value, record
    assert inventory_record(stock, NOW)["available"] == TWICE_INT_MAX - 3


def test_the_sink_creates_stock_columns_as_bigint() -> None:
    shape = table_shape("inventory", "string", load_schema("InventoryRecord"), "sku")
    types = {column.name: column.sql_type for column in shape.columns}
    assert types == {
        "sku": "text",
        "on_hand": "bigint",
        "reserved": "bigint",
        "available": "bigint",
        "updated_at": "timestamptz",
    }


def test_restock_bound_is_far_from_overflowing_a_long() -> None:
    # The bound is about typos and abuse, not overflow: a long takes this many max restocks.
    assert (2**63 - 1) // MAX_RESTOCK_QUANTITY > 9 * 10**12
