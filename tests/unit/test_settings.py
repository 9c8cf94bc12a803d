"""The one settings object: defaults, environment names, validation, immutability."""

from __future__ import annotations

import pydantic
import pytest

from core.settings import Settings


def test_defaults_point_at_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.schema_registry_url.startswith("http://127.0.0.1")
    assert settings.processing_guarantee == "at_least_once"


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092", "bootstrap_list", ["k1:9092", "k2:9092"]),
        (
            "SCHEMA_REGISTRY_URL",
            "http://registry:8081",
            "schema_registry_url",
            "http://registry:8081",
        ),
        ("DATABASE_URL", "postgresql://u@db/m", "database_url", "postgresql://u@db/m"),
        ("MOMENTUM_TOPIC_PARTITIONS", "12", "topic_partitions", 12),
        ("MOMENTUM_RESERVATION_TTL_SECONDS", "2.5", "reservation_ttl_seconds", 2.5),
    ],
)
def test_environment_names(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str, expected: object
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(Settings(), field) == expected


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MOMENTUM_TOPIC_PARTITIONS", "0"),
        ("MOMENTUM_RESERVATION_TTL_SECONDS", "-1"),
        ("MOMENTUM_PAYMENT_ATTEMPTS", "zero"),
    ],
)
def test_invalid_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(pydantic.ValidationError):
        Settings()


def test_settings_are_frozen_and_the_secret_stays_hidden() -> None:
    settings = Settings()
    with pytest.raises(pydantic.ValidationError):
        settings.topic_partitions = 3  # type: ignore[misc]
    assert "change-me" not in repr(settings)
