"""Connector configs the embedded sink refuses, and how it reads the ones it runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sinks.config import ConfigError, load_connectors, parse_connector

BASE: dict[str, str] = {
    "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
    "topics": "orders",
    "table.name.format": "orders",
    "insert.mode": "upsert",
    "pk.mode": "record_key",
    "pk.fields": "order_id",
    "errors.tolerance": "all",
}


def doc(**changes: str | None) -> dict[str, Any]:
    config = {**BASE, **{k.replace("_", "."): v for k, v in changes.items()}}
    return {"name": "test-sink", "config": {k: v for k, v in config.items() if v is not None}}


def test_a_minimal_config_gets_connect_defaults() -> None:
    c = parse_connector(doc())
    assert (c.name, c.topics, c.pk_field, c.group_id) == (
        "test-sink",
        ("orders",),
        "order_id",
        "connect-test-sink",
    )
    assert (c.delete_enabled, c.auto_create, c.auto_evolve) == (False, False, False)
    assert c.batch_size == 3000 and c.dlq_topic is None and not c.dlq_context_headers


def test_consumer_overrides_are_collected_without_prefix() -> None:
    document = doc()
    document["config"]["consumer.override.isolation.level"] = "read_committed"
    assert parse_connector(document).consumer_overrides == {"isolation.level": "read_committed"}


def test_table_name_format_may_use_the_topic() -> None:
    assert parse_connector(doc(table_name_format="rm_${topic}")).table_for("orders") == "rm_orders"


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"connector_class": "io.confluent.connect.jdbc.JdbcSourceConnector"}, "connector.class"),
        ({"insert_mode": "insert"}, "insert.mode must be upsert"),
        ({"pk_mode": "record_value"}, "pk.mode must be record_key"),
        ({"pk_fields": "order_id,sku"}, "exactly one column"),
        ({"pk_fields": None}, "pk.fields is required"),
        ({"topics": None}, "topics is required"),
        ({"table_name_format": None}, "table.name.format is required"),
        ({"batch_size": "0"}, "batch.size must be positive"),
        ({"batch_size": "many"}, "invalid literal"),
        ({"delete_enabled": "yes"}, "delete.enabled must be true or false"),
        ({"errors_tolerance": "some"}, "errors.tolerance"),
    ],
)
def test_configs_the_sink_cannot_run_are_refused_by_key(
    changes: dict[str, str | None], complaint: str
) -> None:
    with pytest.raises(ConfigError, match="<config>") as caught:
        parse_connector(doc(**changes))
    assert complaint in str(caught.value)


def test_a_document_without_config_is_refused() -> None:
    with pytest.raises(ConfigError, match="expected"):
        parse_connector({"name": "x"})


def test_names_must_be_unique_across_files(tmp_path: Path) -> None:
    for stem in ("a", "b"):
        (tmp_path / f"{stem}.json").write_text(json.dumps(doc()))
    with pytest.raises(ConfigError, match="used twice"):
        load_connectors(tmp_path)


def test_a_broken_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ConfigError, match="broken.json"):
        load_connectors(tmp_path)
