"""One settings object, every client's spelling of SASL, TLS and registry auth."""

from __future__ import annotations

import ssl

import faust
import pytest

from core.kafka_clients import (
    aiokafka_config,
    faust_credentials,
    librdkafka_config,
    registry_auth,
    ssl_context,
)
from core.settings import Settings

SASL = {
    "KAFKA_BOOTSTRAP_SERVERS": "k1:9093,k2:9093",
    "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "momentum",
    "KAFKA_SASL_PASSWORD": "s3cret",
}


def settings(**env: str) -> Settings:
    return Settings.model_validate(env)


def test_plaintext_by_default_adds_nothing() -> None:
    plain = settings()
    assert librdkafka_config(plain) == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "PLAINTEXT",
    }
    assert aiokafka_config(plain) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(plain) is None
    assert ssl_context(plain) is None
    assert registry_auth(plain) is None


def test_sasl_reaches_librdkafka() -> None:
    assert librdkafka_config(settings(**SASL)) == {
        "bootstrap.servers": "k1:9093,k2:9093",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "momentum",
        "sasl.password": "s3cret",
    }


def test_sasl_reaches_aiokafka() -> None:
    assert aiokafka_config(settings(**SASL)) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "momentum",
        "sasl_plain_password": "s3cret",
    }


def test_sasl_reaches_faust_and_its_aiokafka_driver() -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    credentials = faust_credentials(settings(**SASL))
    assert isinstance(credentials, faust.SASLCredentials)
    auth = credentials_to_aiokafka_auth(credentials)
    assert auth["security_protocol"] == "SASL_PLAINTEXT"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (auth["sasl_plain_username"], auth["sasl_plain_password"]) == ("momentum", "s3cret")


def test_sasl_ssl_carries_a_tls_context_with_the_ca() -> None:
    # Any PEM CA bundle will do: certifi's.
    import certifi

    env = {**SASL, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SSL_CAFILE": certifi.where()}
    chosen = settings(**env)
    assert librdkafka_config(chosen)["ssl.ca.location"] == certifi.where()
    assert librdkafka_config(chosen)["security.protocol"] == "SASL_SSL"
    context = aiokafka_config(chosen)["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    credentials = faust_credentials(chosen)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.ssl_context is not None


def test_tls_alone_is_faust_ssl_credentials() -> None:
    import certifi

    chosen = settings(KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CAFILE=certifi.where())
    assert isinstance(faust_credentials(chosen), faust.SSLCredentials)
    assert "sasl.username" not in librdkafka_config(chosen)


def test_registry_basic_auth_splits_user_and_password() -> None:
    chosen = settings(SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO="analyst:pa:ss")
    assert registry_auth(chosen) == ("analyst", "pa:ss")


def test_registry_client_sends_basic_auth() -> None:
    import httpx

    from schemas.registry import SchemaRegistryClient

    client = SchemaRegistryClient("http://registry:8081", auth=("analyst", "pw"))
    try:
        request = client._http.build_request("GET", "/subjects")
        flow = client._http._auth.sync_auth_flow(request)  # type: ignore[attr-defined]
        sent = next(flow)
        assert sent.headers["Authorization"] == httpx.BasicAuth("analyst", "pw")._auth_header
    finally:
        client.close()


@pytest.mark.parametrize("protocol", ["sasl_ssl", "SASL_SSL"])
def test_protocol_names_are_case_insensitive(protocol: str) -> None:
    import certifi

    chosen = settings(
        **{**SASL, "KAFKA_SECURITY_PROTOCOL": protocol}, KAFKA_SSL_CAFILE=certifi.where()
    )
    assert librdkafka_config(chosen)["security.protocol"] == "SASL_SSL"
