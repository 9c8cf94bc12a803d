"""Avro writer schemas to Postgres columns and the sink's SQL, without a database."""

from __future__ import annotations

from typing import Any

import pytest

from schemas import load_schema
from sinks.ddl import (
    Column,
    SchemaError,
    add_columns_sql,
    create_table_sql,
    delete_sql,
    key_column,
    sql_type,
    table_shape,
    upsert_from_staging_sql,
    upsert_sql,
    value_columns,
)

DECIMAL = {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}
ENUM = {"type": "enum", "name": "Colour", "symbols": ["RED", "BLUE"]}


def record(*fields: dict[str, Any], name: str = "Thing") -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "momentum", "fields": list(fields)}


@pytest.mark.parametrize(
    ("avro", "expected"),
    [
        ("string", ("text", False)),
        ("int", ("integer", False)),
        ("long", ("bigint", False)),
        ("boolean", ("boolean", False)),
        ("double", ("double precision", False)),
        ("float", ("real", False)),
        ("bytes", ("bytea", False)),
        (DECIMAL, ("numeric(12,2)", False)),
        ({"type": "bytes", "logicalType": "decimal", "precision": 9}, ("numeric(9,0)", False)),
        ({"type": "long", "logicalType": "timestamp-millis"}, ("timestamptz", False)),
        ({"type": "long", "logicalType": "timestamp-micros"}, ("timestamptz", False)),
        ({"type": "int", "logicalType": "date"}, ("date", False)),
        ({"type": "string", "logicalType": "uuid"}, ("text", False)),
        (ENUM, ("text", False)),
        (["null", "string"], ("text", True)),
        (["string", "null"], ("text", True)),
        (["null", DECIMAL], ("numeric(12,2)", True)),
        (["null", ENUM], ("text", True)),
        ({"type": "fixed", "name": "Hash", "size": 16}, ("bytea", False)),
    ],
)
def test_avro_types_map_to_columns(avro: Any, expected: tuple[str, bool]) -> None:
    assert sql_type(avro, {}, "field x") == expected


@pytest.mark.parametrize(
    ("avro", "complaint"),
    [
        ({"type": "array", "items": "string"}, "array"),
        ({"type": "map", "values": "int"}, "map"),
        (record({"name": "a", "type": "int"}, name="Inner"), "record"),
        (["null", "string", "int"], "union"),
        (["string", "int"], "union"),
        ("null", "null"),
        ("momentum.Unknown", "unknown named type"),
    ],
)
def test_types_that_cannot_be_a_column_fail_clearly(avro: Any, complaint: str) -> None:
    with pytest.raises(SchemaError, match="field lines") as caught:
        sql_type(avro, {}, "field lines")
    assert complaint in str(caught.value)


def test_named_types_defined_once_resolve_by_name_later() -> None:
    schema = record(
        {"name": "status", "type": {**ENUM, "namespace": "momentum"}},
        {"name": "previous", "type": ["null", "momentum.Colour"], "default": None},
    )
    columns = value_columns(schema, "id")
    assert [(c.name, c.sql_type, c.nullable) for c in columns] == [
        ("status", "text", False),
        ("previous", "text", True),
    ]


def test_pk_field_in_the_value_is_filled_by_the_key_not_a_second_column() -> None:
    shape = table_shape("orders", "string", load_schema("OrderRecord"), "order_id")
    assert shape.key == Column("order_id", "text", nullable=False)
    assert "order_id" not in shape.value_fields
    assert shape.value_fields[:3] == ("customer_id", "status", "reason")


def test_order_record_table_matches_the_schema() -> None:
    shape = table_shape("orders", "string", load_schema("OrderRecord"), "order_id")
    assert create_table_sql(shape).as_string(None) == (
        'CREATE TABLE IF NOT EXISTS "orders" ('
        '"order_id" text NOT NULL, "customer_id" text NOT NULL, "status" text NOT NULL, '
        '"reason" text, "total" numeric(12,2) NOT NULL, "currency" text, '
        '"line_count" integer NOT NULL, "created_at" timestamptz NOT NULL, '
        '"updated_at" timestamptz NOT NULL, PRIMARY KEY ("order_id"))'
    )


def test_array_field_in_a_value_schema_is_refused() -> None:
    with pytest.raises(SchemaError, match="field lines: a array"):
        value_columns(load_schema("OrderState"), "order_id")


@pytest.mark.parametrize(
    ("key", "sql"), [("string", "text"), ("long", "bigint"), ({"type": "string"}, "text")]
)
def test_primitive_keys_become_the_pk_column(key: Any, sql: str) -> None:
    assert key_column(key, "id") == Column("id", sql, nullable=False)


@pytest.mark.parametrize("key", [record({"name": "id", "type": "string"}), "bytes", "double"])
def test_non_primitive_keys_are_refused(key: Any) -> None:
    with pytest.raises(SchemaError, match="primitive key"):
        key_column(key, "id")


def test_value_must_be_a_record() -> None:
    with pytest.raises(SchemaError, match="must be a record"):
        value_columns("string", "id")


def test_upsert_updates_every_value_column_on_conflict() -> None:
    shape = table_shape("inventory", "string", load_schema("InventoryRecord"), "sku")
    assert upsert_sql(shape).as_string(None) == (
        'INSERT INTO "inventory" ("sku", "on_hand", "reserved", "available", "updated_at") '
        "VALUES (%s, %s, %s, %s, %s) "
        'ON CONFLICT ("sku") DO UPDATE SET "on_hand" = EXCLUDED."on_hand", '
        '"reserved" = EXCLUDED."reserved", "available" = EXCLUDED."available", '
        '"updated_at" = EXCLUDED."updated_at"'
    )
    assert (
        upsert_from_staging_sql(shape, "stage")
        .as_string(None)
        .startswith(
            'INSERT INTO "inventory" ("sku", "on_hand", "reserved", "available", "updated_at") '
            'SELECT "sku", "on_hand", "reserved", "available", "updated_at" FROM "stage" '
            'ON CONFLICT ("sku") DO UPDATE SET'
        )
    )


def test_a_key_only_table_upserts_as_do_nothing() -> None:
    shape = table_shape("seen", "string", record({"name": "id", "type": "string"}), "id")
    assert upsert_sql(shape).as_string(None).endswith('ON CONFLICT ("id") DO NOTHING')


def test_identifiers_are_quoted() -> None:
    assert delete_sql('odd"name', "order-id").as_string(None) == (
        'DELETE FROM "odd""name" WHERE "order-id" = ANY(%s)'
    )


def test_evolve_adds_nullable_columns_and_columns_with_defaults() -> None:
    columns = [Column("note", "text", True), Column("tries", "integer", False, 0, True)]
    assert add_columns_sql("orders", columns).as_string(None) == (
        'ALTER TABLE "orders" ADD COLUMN IF NOT EXISTS "note" text, '
        'ADD COLUMN IF NOT EXISTS "tries" integer DEFAULT 0 NOT NULL'
    )


def test_evolve_refuses_a_not_null_column_without_default() -> None:
    with pytest.raises(SchemaError, match="NOT NULL and has no default"):
        add_columns_sql("orders", [Column("tries", "integer", False)])


def test_literal_avro_defaults_become_column_defaults() -> None:
    schema = record(
        {"name": "threshold", "type": "int", "default": 5},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "price", "type": DECIMAL, "default": "\u0000"},
    )
    threshold, note, price = value_columns(schema, "sku")
    assert (threshold.default, threshold.has_default) == (5, True)
    assert not note.has_default and note.nullable
    assert not price.has_default  # decimal defaults are bytes, not a literal for SQL
