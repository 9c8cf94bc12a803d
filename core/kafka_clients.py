"""The one settings object's connection security, spelt the way each client wants it.

Momentum talks to Kafka through three clients (Faust on aiokafka in the workers,
aiokafka in the gateway, confluent-kafka in the sink and the CLI) and to the
schema registry over HTTP. Each names SASL and TLS options differently; these
functions are the only place that knows the spellings, so a secured cluster is
configured once, in the environment (core.settings).
"""

from __future__ import annotations

import ssl
from typing import Any

from core.settings import Settings

SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
TLS_PROTOCOLS = ("SSL", "SASL_SSL")


def _protocol(settings: Settings) -> str:
    return settings.kafka_security_protocol.upper()


def _password(settings: Settings) -> str | None:
    secret = settings.kafka_sasl_password
    return secret.get_secret_value() if secret is not None else None


def librdkafka_config(settings: Settings) -> dict[str, Any]:
    """confluent-kafka (librdkafka) properties: `bootstrap.servers` and security."""
    protocol = _protocol(settings)
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "security.protocol": protocol,
    }
    if protocol in SASL_PROTOCOLS:
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism or "PLAIN"
        config["sasl.username"] = settings.kafka_sasl_username
        config["sasl.password"] = _password(settings)
    if protocol in TLS_PROTOCOLS:
        for key, path in (
            ("ssl.ca.location", settings.kafka_ssl_cafile),
            ("ssl.certificate.location", settings.kafka_ssl_certfile),
            ("ssl.key.location", settings.kafka_ssl_keyfile),
        ):
            if path is not None:
                config[key] = str(path)
    return config


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """A TLS context for the Python clients (aiokafka, Faust); None without TLS."""
    if _protocol(settings) not in TLS_PROTOCOLS:
        return None
    cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    context = ssl.create_default_context(purpose=ssl.Purpose.SERVER_AUTH, cafile=cafile)
    if settings.kafka_ssl_certfile is not None:
        keyfile = str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None
        context.load_cert_chain(str(settings.kafka_ssl_certfile), keyfile)
    return context


def aiokafka_config(settings: Settings) -> dict[str, Any]:
    """AIOKafkaProducer/AIOKafkaConsumer keyword arguments for security (not the servers)."""
    protocol = _protocol(settings)
    config: dict[str, Any] = {"security_protocol": protocol}
    if protocol in SASL_PROTOCOLS:
        config["sasl_mechanism"] = settings.kafka_sasl_mechanism or "PLAIN"
        config["sasl_plain_username"] = settings.kafka_sasl_username
        config["sasl_plain_password"] = _password(settings)
    context = ssl_context(settings)
    if context is not None:
        config["ssl_context"] = context
    return config


def faust_credentials(settings: Settings) -> Any:
    """Faust's `broker_credentials`: SASL (over TLS when asked), TLS alone, or None."""
    import faust

    protocol = _protocol(settings)
    context = ssl_context(settings)
    if protocol in SASL_PROTOCOLS:
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=_password(settings),
            ssl_context=context,
            mechanism=settings.kafka_sasl_mechanism or "PLAIN",
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def registry_auth(settings: Settings) -> tuple[str, str] | None:
    """HTTP basic auth for the schema registry, from SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO."""
    if settings.schema_registry_basic_auth is None:
        return None
    user, _, password = settings.schema_registry_basic_auth.get_secret_value().partition(":")
    return (user, password)
