"""Postgres tables from Avro schemas, and the SQL the sink writes with.

The mapping follows the Confluent JDBC sink on PostgreSQL (with AvroConverter),
so a table created here looks like one Kafka Connect would create, except where
noted:

| Avro (writer schema)                  | column                                   |
|---------------------------------------|------------------------------------------|
| string, enum (Connect: STRING)        | text                                     |
| int                                   | integer                                  |
| long                                  | bigint                                   |
| boolean                               | boolean                                  |
| float / double                        | real / double precision                  |
| bytes, fixed                          | bytea                                    |
| bytes/fixed + decimal(p, s)           | numeric(p, s)  (Connect: bare numeric)   |
| long + timestamp-millis/micros        | timestamptz    (Connect: timestamp, UTC) |
| int + date                            | date                                     |
| ["null", T]                           | T, nullable; any other T is NOT NULL      |
| record, array, map, other unions      | not allowed: `SchemaError`               |

The primary key column is named by `pk.fields` and typed from the (primitive)
record key's schema. A value field with the same name is not a column of its
own: as in Connect, the key is the value of that column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

# Avro defaults of these types are plain literals and can become column DEFAULTs.
LITERAL_DEFAULT_TYPES = {"string", "int", "long", "boolean", "float", "double"}

PRIMITIVE_TYPES = {
    "string": "text",
    "int": "integer",
    "long": "bigint",
    "boolean": "boolean",
    "float": "real",
    "double": "double precision",
    "bytes": "bytea",
}


class SchemaError(ValueError):
    """An Avro schema the read model cannot hold (e.g. an array field)."""


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    nullable: bool
    default: Any = None
    has_default: bool = False

    def definition(self) -> sql.Composable:
        parts: list[sql.Composable] = [sql.Identifier(self.name), sql.SQL(self.sql_type)]
        if self.has_default and self.default is not None:
            parts += [sql.SQL("DEFAULT"), sql.Literal(self.default)]
        if not self.nullable:
            parts.append(sql.SQL("NOT NULL"))
        return sql.SQL(" ").join(parts)


@dataclass(frozen=True)
class TableShape:
    """The columns one (key schema, value schema) pair writes: the key first."""

    table: str
    key: Column
    values: tuple[Column, ...]

    @property
    def columns(self) -> tuple[Column, ...]:
        return (self.key, *self.values)

    @property
    def value_fields(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.values)


def _named_types(schema: Any, found: dict[str, Any], namespace: str | None = None) -> None:
    """Collect named types, so later references by name resolve (schemas arrive expanded)."""
    if isinstance(schema, list):
        for branch in schema:
            _named_types(branch, found, namespace)
        return
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind in ("record", "enum", "fixed", "error"):
        ns = schema.get("namespace", namespace)
        name = schema["name"]
        full = name if "." in name or not ns else f"{ns}.{name}"
        found[full] = schema
        found.setdefault(name, schema)
        for f in schema.get("fields", []):
            _named_types(f["type"], found, ns)
    elif kind == "array":
        _named_types(schema["items"], found, namespace)
    elif kind == "map":
        _named_types(schema["values"], found, namespace)
    elif isinstance(kind, dict | list):
        _named_types(kind, found, namespace)


def _resolve(schema: Any, named: dict[str, Any], where: str = "schema") -> Any:
    if isinstance(schema, str) and schema not in PRIMITIVE_TYPES and schema != "null":
        if schema not in named:
            raise SchemaError(f"{where}: unknown named type {schema!r}")
        return named[schema]
    if isinstance(schema, dict) and isinstance(schema.get("type"), dict | list):
        return _resolve(schema["type"], named, where)
    return schema


def sql_type(schema: Any, named: dict[str, Any], where: str) -> tuple[str, bool]:
    """The column type for an Avro type, and whether it is nullable."""
    schema = _resolve(schema, named, where)
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        if len(branches) != 1 or len(schema) != 2:
            raise SchemaError(f'{where}: only ["null", T] unions fit a column, not {schema}')
        inner, _ = sql_type(branches[0], named, where)
        return inner, True
    if isinstance(schema, str):
        if schema == "null":
            raise SchemaError(f"{where}: a null-only field has no column type")
        return PRIMITIVE_TYPES[schema], False
    kind = schema.get("type")
    logical = schema.get("logicalType")
    if logical == "decimal" and kind in ("bytes", "fixed"):
        precision, scale = schema.get("precision"), schema.get("scale", 0)
        return (f"numeric({precision},{scale})" if precision else "numeric"), False
    if logical in ("timestamp-millis", "timestamp-micros") and kind == "long":
        return "timestamptz", False
    if logical == "date" and kind == "int":
        return "date", False
    if kind == "enum":
        return "text", False
    if kind == "fixed":
        return "bytea", False
    if kind in PRIMITIVE_TYPES:
        return PRIMITIVE_TYPES[kind], False
    raise SchemaError(f"{where}: a {kind} cannot be a column (flatten it into fields)")


def key_column(key_schema: Any, pk_field: str) -> Column:
    resolved = _resolve(key_schema, {})
    kind = resolved if isinstance(resolved, str) else resolved.get("type")
    if kind not in ("string", "int", "long"):
        raise SchemaError(
            f"pk.mode record_key with one pk field needs a primitive key, not {key_schema!r}"
        )
    sql_kind, _ = sql_type(resolved, {}, f"key {pk_field}")
    return Column(pk_field, sql_kind, nullable=False)


def value_columns(value_schema: Any, pk_field: str) -> tuple[Column, ...]:
    named: dict[str, Any] = {}
    _named_types(value_schema, named)
    record = _resolve(value_schema, named)
    if not isinstance(record, dict) or record.get("type") != "record":
        raise SchemaError(f"the value schema must be a record, not {value_schema!r}")
    columns = []
    for f in record["fields"]:
        if f["name"] == pk_field:
            continue  # the key fills this column (Connect does the same)
        kind, nullable = sql_type(f["type"], named, f"field {f['name']}")
        default = f.get("default")
        resolved = _resolve(f["type"], named)
        simple = isinstance(resolved, str) and resolved in LITERAL_DEFAULT_TYPES
        columns.append(
            Column(
                f["name"], kind, nullable, default if simple else None, "default" in f and simple
            )
        )
    return tuple(columns)


def table_shape(table: str, key_schema: Any, value_schema: Any, pk_field: str) -> TableShape:
    return TableShape(
        table, key_column(key_schema, pk_field), value_columns(value_schema, pk_field)
    )


# -- SQL -------------------------------------------------------------------------------------


def create_table_sql(shape: TableShape) -> sql.Composed:
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))").format(
        sql.Identifier(shape.table),
        sql.SQL(", ").join(c.definition() for c in shape.columns),
        sql.Identifier(shape.key.name),
    )


def add_columns_sql(table: str, columns: Sequence[Column]) -> sql.Composed:
    """auto.evolve: only adds columns; a NOT NULL one needs a default for existing rows."""
    for c in columns:
        if not c.nullable and not c.has_default:
            raise SchemaError(
                f"cannot add column {c.name} to {table}: it is NOT NULL and has no default"
            )
    return sql.SQL("ALTER TABLE {} {}").format(
        sql.Identifier(table),
        sql.SQL(", ").join(
            sql.SQL("ADD COLUMN IF NOT EXISTS {}").format(c.definition()) for c in columns
        ),
    )


def _conflict_clause(shape: TableShape) -> sql.Composable:
    if not shape.values:
        return sql.SQL("ON CONFLICT ({}) DO NOTHING").format(sql.Identifier(shape.key.name))
    return sql.SQL("ON CONFLICT ({}) DO UPDATE SET {}").format(
        sql.Identifier(shape.key.name),
        sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c.name)) for c in shape.values
        ),
    )


def _column_list(shape: TableShape) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(c.name) for c in shape.columns)


def upsert_sql(shape: TableShape) -> sql.Composed:
    """One row per execution; `executemany` sends them pipelined."""
    return sql.SQL("INSERT INTO {} ({}) VALUES ({}) {}").format(
        sql.Identifier(shape.table),
        _column_list(shape),
        sql.SQL(", ").join(sql.Placeholder() * len(shape.columns)),
        _conflict_clause(shape),
    )


def staging_table_sql(shape: TableShape, staging: str) -> sql.Composed:
    return sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(
        sql.Identifier(staging),
        sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.sql_type))
            for c in shape.columns
        ),
    )


def copy_sql(shape: TableShape, staging: str) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(staging), _column_list(shape))


def upsert_from_staging_sql(shape: TableShape, staging: str) -> sql.Composed:
    return sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} {}").format(
        sql.Identifier(shape.table),
        _column_list(shape),
        _column_list(shape),
        sql.Identifier(staging),
        _conflict_clause(shape),
    )


def delete_sql(table: str, pk_field: str) -> sql.Composed:
    return sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)").format(
        sql.Identifier(table), sql.Identifier(pk_field)
    )
