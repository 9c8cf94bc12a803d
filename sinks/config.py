"""Kafka Connect JDBC sink configs (`connectors/*.json`), parsed into what the sink needs.

The JSON files are the one source of truth for the read-model mapping: Kafka
Connect takes them unchanged on the production stack (`POST /connectors`), and
the embedded sink reads the same keys. Only the subset of the Confluent JDBC
sink's options that Momentum uses is understood; `connection.*` is ignored here
because the embedded sink writes to `DATABASE_URL`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONNECTORS_DIR = Path(__file__).resolve().parent.parent / "connectors"
JDBC_SINK_CLASS = "io.confluent.connect.jdbc.JdbcSinkConnector"
AVRO_CONVERTER = "io.confluent.connect.avro.AvroConverter"
CONSUMER_OVERRIDE = "consumer.override."

# Kafka Connect's own defaults for the options we read.
DEFAULT_BATCH_SIZE = 3000


class ConfigError(ValueError):
    """A connector config the sink cannot run; the message names the file and the key."""


@dataclass(frozen=True)
class ConnectorConfig:
    name: str
    topics: tuple[str, ...]
    table_name_format: str
    pk_field: str
    delete_enabled: bool
    auto_create: bool
    auto_evolve: bool
    batch_size: int
    dlq_topic: str | None
    dlq_context_headers: bool
    errors_tolerate_all: bool
    consumer_overrides: dict[str, str] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def group_id(self) -> str:
        # Kafka Connect names a sink connector's consumer group this way.
        return f"connect-{self.name}"

    def table_for(self, topic: str) -> str:
        return self.table_name_format.replace("${topic}", topic)


def _flag(config: dict[str, str], key: str, default: bool) -> bool:
    value = str(config.get(key, str(default))).strip().lower()
    if value not in ("true", "false"):
        raise ConfigError(f"{key} must be true or false, not {value!r}")
    return value == "true"


def parse_connector(document: dict[str, Any], origin: str = "<config>") -> ConnectorConfig:
    """Validate one `{"name": ..., "config": {...}}` document as the sink would run it."""
    try:
        name = document["name"]
        config = {str(k): str(v) for k, v in document["config"].items()}
    except (KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{origin}: expected {{'name': ..., 'config': {{...}}}}") from exc

    def need(key: str) -> str:
        if not config.get(key):
            raise ConfigError(f"{origin}: {key} is required")
        return config[key]

    try:
        if need("connector.class") != JDBC_SINK_CLASS:
            raise ConfigError(f"connector.class must be {JDBC_SINK_CLASS}")
        if config.get("name", name) != name:
            raise ConfigError(f"config.name {config['name']!r} differs from name {name!r}")
        if need("insert.mode") != "upsert":
            raise ConfigError("insert.mode must be upsert (the read model is idempotent)")
        if need("pk.mode") != "record_key":
            raise ConfigError("pk.mode must be record_key (keys are the entity ids)")
        pk_fields = [f.strip() for f in need("pk.fields").split(",") if f.strip()]
        # A primitive (Avro string) key yields exactly one column, as in Connect.
        if len(pk_fields) != 1:
            raise ConfigError(f"pk.fields must name exactly one column, not {pk_fields}")
        topics = tuple(t.strip() for t in need("topics").split(",") if t.strip())
        if not topics:
            raise ConfigError("topics names no topic")
        batch_size = int(config.get("batch.size", DEFAULT_BATCH_SIZE))
        if batch_size < 1:
            raise ConfigError("batch.size must be positive")
        tolerate = config.get("errors.tolerance", "none")
        if tolerate not in ("none", "all"):
            raise ConfigError(f"errors.tolerance must be none or all, not {tolerate!r}")
        dlq = config.get("errors.deadletterqueue.topic.name") or None
        overrides = {
            key.removeprefix(CONSUMER_OVERRIDE): value
            for key, value in config.items()
            if key.startswith(CONSUMER_OVERRIDE)
        }
        return ConnectorConfig(
            name=name,
            topics=topics,
            table_name_format=need("table.name.format"),
            pk_field=pk_fields[0],
            delete_enabled=_flag(config, "delete.enabled", False),
            auto_create=_flag(config, "auto.create", False),
            auto_evolve=_flag(config, "auto.evolve", False),
            batch_size=batch_size,
            dlq_topic=dlq,
            dlq_context_headers=_flag(
                config, "errors.deadletterqueue.context.headers.enable", False
            ),
            errors_tolerate_all=tolerate == "all",
            consumer_overrides=overrides,
            raw=config,
        )
    except ConfigError as exc:
        if str(exc).startswith(origin):
            raise
        raise ConfigError(f"{origin}: {exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"{origin}: {exc}") from exc


def load_connector(path: Path) -> ConnectorConfig:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return parse_connector(document, str(path))


def load_connectors(directory: Path = CONNECTORS_DIR) -> list[ConnectorConfig]:
    """Every `*.json` in the directory, sorted by file name; names must be unique."""
    connectors = [load_connector(p) for p in sorted(directory.glob("*.json"))]
    names = [c.name for c in connectors]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ConfigError(f"{directory}: connector names used twice: {sorted(duplicates)}")
    return connectors
