"""The Kafka Connect JDBC sink configs in `connectors/` agree with the topics and schemas.

Table-driven over every `connectors/*.json`: each parses as the embedded sink
runs it, reads a public topic of the registry in `core.topics`, keys its
table by a string field of that topic's value schema, and carries the settings
the read model relies on (Avro converters on a registry, read_committed,
upsert by record key, a dead-letter topic with context headers).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from core.topics import BY_NAME
from schemas import load_schema
from sinks.config import AVRO_CONVERTER, CONNECTORS_DIR, JDBC_SINK_CLASS, load_connectors
from sinks.ddl import value_columns

CONNECTOR_FILES = sorted(CONNECTORS_DIR.glob("*.json"))
# Each read-model table and the topic that feeds it.
EXPECTED_TABLES = {
    "orders": "orders",
    "order_lines": "order-lines",
    "payments": "payments",
    "inventory": "inventory",
    "sales_per_minute": "sales-per-minute",
}
# Windows of sales are history: a tombstone there is a bug upstream, not a delete.
DELETES_ENABLED = {"orders", "order_lines", "payments", "inventory"}

SQL_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def config_of(path: Path) -> dict[str, str]:
    config: dict[str, str] = json.loads(path.read_text())["config"]
    return config


def value_field(record: str, name: str) -> dict[str, Any] | None:
    schema = load_schema(record)
    assert isinstance(schema, dict)
    return next((f for f in schema["fields"] if f["name"] == name), None)


@pytest.fixture(params=CONNECTOR_FILES, ids=lambda p: p.stem)
def path(request: pytest.FixtureRequest) -> Path:
    return Path(request.param)


def test_every_read_model_table_has_exactly_one_connector() -> None:
    tables = {c.table_name_format: c.topics for c in load_connectors()}
    assert {t: topics[0] for t, topics in tables.items()} == EXPECTED_TABLES
    assert all(len(topics) == 1 for topics in tables.values())


def test_connector_names_and_dead_letter_topics_are_unique() -> None:
    connectors = load_connectors()
    assert len({c.name for c in connectors}) == len(connectors)
    assert len({c.dlq_topic for c in connectors}) == len(connectors)


def test_file_name_is_the_table_name(path: Path) -> None:
    assert config_of(path)["table.name.format"] == path.stem
    assert SQL_IDENTIFIER.match(path.stem), "table names are plain lower-case identifiers"


def test_document_is_what_post_connectors_accepts(path: Path) -> None:
    document = json.loads(path.read_text())
    assert set(document) == {"name", "config"}
    assert document["name"].startswith("momentum-") and document["name"].endswith("-sink")
    # Connect takes every config value as a string.
    assert all(isinstance(v, str) for v in document["config"].values())
    assert document["config"]["connector.class"] == JDBC_SINK_CLASS


def test_topics_are_public_topics_of_the_registry(path: Path) -> None:
    for topic in config_of(path)["topics"].split(","):
        assert topic in BY_NAME, f"{topic} is not in core.topics"
        assert BY_NAME[topic].public, f"{topic} is internal (UTF-8 keys), not for the sink"


def test_pk_field_is_the_string_key_field_of_the_value_schema(path: Path) -> None:
    config = config_of(path)
    assert config["pk.mode"] == "record_key"
    pk_fields = config["pk.fields"].split(",")
    # A primitive (Avro string) record key becomes exactly one column.
    assert len(pk_fields) == 1
    spec = BY_NAME[config["topics"]]
    field = value_field(spec.value_record, pk_fields[0])
    assert field is not None, f"{pk_fields[0]} is not a field of {spec.value_record}"
    assert field["type"] == "string", "the key is an Avro string, so the column is text"
    assert spec.key == pk_fields[0], "the topic registry keys this topic by the same field"


def test_value_schema_maps_to_columns(path: Path) -> None:
    config = config_of(path)
    spec = BY_NAME[config["topics"]]
    columns = value_columns(load_schema(spec.value_record), config["pk.fields"])
    assert columns, "a table needs columns besides its key"


def test_upsert_semantics(path: Path) -> None:
    config = config_of(path)
    assert config["insert.mode"] == "upsert"
    assert config["auto.create"] == "true"
    assert config["auto.evolve"] == "true"
    assert config["delete.enabled"] == str(path.stem in DELETES_ENABLED).lower()
    if config["delete.enabled"] == "true":
        assert config["pk.mode"] == "record_key", "Connect deletes only by record key"


def test_converters_read_avro_from_a_schema_registry(path: Path) -> None:
    config = config_of(path)
    for side in ("key", "value"):
        assert config[f"{side}.converter"] == AVRO_CONVERTER
        assert config[f"{side}.converter.schema.registry.url"] == "http://schema-registry:8081"


def test_reads_committed_records_only(path: Path) -> None:
    assert config_of(path)["consumer.override.isolation.level"] == "read_committed"


def test_errors_go_to_a_dead_letter_topic_with_context(path: Path) -> None:
    config = config_of(path)
    topic = config["topics"]
    assert config["errors.tolerance"] == "all"
    assert config["errors.log.enable"] == "true"
    assert config["errors.deadletterqueue.topic.name"] == f"{topic}.connect-dlq"
    # Not the workers' dead-letter topic: different producers, different headers.
    assert config["errors.deadletterqueue.topic.name"] != BY_NAME[topic].dlq
    assert config["errors.deadletterqueue.topic.replication.factor"] == "1"
    assert config["errors.deadletterqueue.context.headers.enable"] == "true"


def test_deployable_on_the_compose_stack(path: Path) -> None:
    config = config_of(path)
    assert config["connection.url"] == "jdbc:postgresql://postgres:5432/momentum"
    # Credentials come from Connect's env config provider, never from the file.
    assert config["connection.user"] == "${env:POSTGRES_USER}"
    assert config["connection.password"] == "${env:POSTGRES_PASSWORD}"
    assert int(config["tasks.max"]) >= 1
    assert int(config["batch.size"]) >= 1


def test_the_embedded_sink_loads_them_all() -> None:
    connectors = load_connectors()
    assert len(connectors) == len(CONNECTOR_FILES) == len(EXPECTED_TABLES)
    assert all(c.group_id == f"connect-{c.name}" for c in connectors)
