"""The gateway's JWT secret: required, at least 32 bytes, never a published default."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import SecretStr

from core.settings import Settings
from gateway.auth import MIN_SECRET_BYTES, InsecureSecret, require_secret
from gateway.main import create_app
from schemas.serdes import InMemoryRegistry, Serdes
from tests.support.gateway import FakeProducer, FakeReader, make_settings


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        (None, "not set"),
        ("", "not set"),
        (SecretStr(""), "not set"),
        ("x" * (MIN_SECRET_BYTES - 1), "31 bytes long"),
        ("é" * 15 + "x", "31 bytes long"),  # bytes, not characters
        ("momentum-local-development-secret", "published"),
        (SecretStr("momentum-local-development-secret-change-me"), "published"),
    ],
)
def test_weak_secrets_are_refused_saying_why(secret: str | SecretStr | None, reason: str) -> None:
    with pytest.raises(InsecureSecret, match=reason) as refused:
        require_secret(secret)
    assert "MOMENTUM_JWT_SECRET" in str(refused.value)
    assert "secrets.token_urlsafe" in str(refused.value), "says how to make a good one"


@pytest.mark.parametrize("secret", ["x" * MIN_SECRET_BYTES, "é" * 16, SecretStr("k" * 64)])
def test_strong_secrets_are_accepted(secret: str | SecretStr) -> None:
    expected = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    assert require_secret(secret) == expected


def test_settings_have_no_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOMENTUM_JWT_SECRET", raising=False)
    assert Settings().jwt_secret is None


@pytest.mark.parametrize("secret", [None, "short-secret"])
async def test_gateway_refuses_to_start_with_a_weak_secret(secret: str | None) -> None:
    producer = FakeProducer()
    settings = make_settings(MOMENTUM_JWT_SECRET=secret)
    app = create_app(settings, producer, FakeReader(), serdes=Serdes(InMemoryRegistry()))
    with pytest.raises(InsecureSecret):
        async with app.router.lifespan_context(app):
            pass
    assert not producer.started, "refused before touching Kafka"


def test_uvicorn_exits_at_once_naming_the_missing_secret() -> None:
    # What `docker compose up` would show for a gateway without the secret, had
    # compose not refused first.
    env = {k: v for k, v in os.environ.items() if k != "MOMENTUM_JWT_SECRET"}
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
            "SCHEMA_REGISTRY_URL": "http://127.0.0.1:9",
            "WORKER_URL": "http://127.0.0.1:9",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "uvicorn", "gateway.main:app", "--host", "127.0.0.1", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "the gateway cannot start: MOMENTUM_JWT_SECRET is not set" in done.stderr
