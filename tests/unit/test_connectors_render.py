"""`momentum connectors render`: the deployment's settings into the connector configs."""

from __future__ import annotations

import json

import pytest

from core.settings import Settings
from momentum.connectors import jdbc_url, render_connector
from sinks.config import CONNECTORS_DIR, parse_connector


def settings(**env: str) -> Settings:
    return Settings.model_validate(env)


@pytest.mark.parametrize(
    ("database_url", "expected"),
    [
        (
            "postgresql://u:secret@db.internal:5433/momentum",
            "jdbc:postgresql://db.internal:5433/momentum",
        ),
        ("postgres://postgres@127.0.0.1/momentum", "jdbc:postgresql://127.0.0.1/momentum"),
    ],
)
def test_jdbc_url_drops_credentials(database_url: str, expected: str) -> None:
    assert jdbc_url(database_url) == expected


def test_jdbc_url_refuses_what_is_not_postgres() -> None:
    with pytest.raises(ValueError, match="postgresql://"):
        jdbc_url("mysql://h/db")


def test_every_connector_takes_url_registry_and_replication_from_settings() -> None:
    chosen = settings(
        DATABASE_URL="postgresql://u:pw@pg:5432/momentum",
        SCHEMA_REGISTRY_URL="http://sr.internal:8081",
        MOMENTUM_TOPIC_REPLICATION_FACTOR="3",
    )
    paths = sorted(CONNECTORS_DIR.glob("*.json"))
    assert paths
    for path in paths:
        original = json.loads(path.read_text())
        rendered = render_connector(original, chosen)
        config = rendered["config"]
        assert config["connection.url"] == "jdbc:postgresql://pg:5432/momentum", path.name
        assert config["errors.deadletterqueue.topic.replication.factor"] == "3", path.name
        assert config["value.converter.schema.registry.url"] == "http://sr.internal:8081"
        # Credentials stay references Connect resolves; the mapping is untouched.
        assert config["connection.password"] == original["config"]["connection.password"]
        assert "pw" not in json.dumps(rendered)
        assert parse_connector(rendered).topics == parse_connector(original).topics
        assert original["config"]["errors.deadletterqueue.topic.replication.factor"] == "1"
