"""The one settings object for every Momentum process, read from the environment.

The embedded launcher (`momentum up`) sets these variables for the processes it
starts; on the production stack they point at real Kafka, Schema Registry,
Postgres and the card provider.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    # Where the parts are. Names without prefix are the ones every Kafka tool knows.
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092", validation_alias="KAFKA_BOOTSTRAP_SERVERS"
    )
    schema_registry_url: str = Field(
        default="http://127.0.0.1:8081", validation_alias="SCHEMA_REGISTRY_URL"
    )
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/momentum", validation_alias="DATABASE_URL"
    )
    payment_provider_url: str = Field(
        default="http://127.0.0.1:8090", validation_alias="PAYMENT_PROVIDER_URL"
    )
    # How every Kafka client connects (core.kafka_clients maps these for Faust, aiokafka
    # and confluent-kafka): PLAINTEXT on the embedded broker; SSL, SASL_PLAINTEXT or
    # SASL_SSL on a secured cluster.
    kafka_security_protocol: str = Field(
        default="PLAINTEXT", validation_alias="KAFKA_SECURITY_PROTOCOL"
    )
    # PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, with the user and password below.
    kafka_sasl_mechanism: str | None = Field(default=None, validation_alias="KAFKA_SASL_MECHANISM")
    kafka_sasl_username: str | None = Field(default=None, validation_alias="KAFKA_SASL_USERNAME")
    kafka_sasl_password: SecretStr | None = Field(
        default=None, validation_alias="KAFKA_SASL_PASSWORD"
    )
    # PEM files: the CA that signed the brokers' certificates; a client certificate
    # and key for mutual TLS.
    kafka_ssl_cafile: Path | None = Field(default=None, validation_alias="KAFKA_SSL_CAFILE")
    kafka_ssl_certfile: Path | None = Field(default=None, validation_alias="KAFKA_SSL_CERTFILE")
    kafka_ssl_keyfile: Path | None = Field(default=None, validation_alias="KAFKA_SSL_KEYFILE")
    # "user:password" for a schema registry behind HTTP basic auth (Confluent's name).
    schema_registry_basic_auth: SecretStr | None = Field(
        default=None, validation_alias="SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO"
    )
    # Base URL of any worker's web server; table routing forwards to the owner.
    worker_url: str = Field(default="http://127.0.0.1:6066", validation_alias="WORKER_URL")

    # Faust worker.
    app_id: str = Field(default="momentum", validation_alias="MOMENTUM_APP_ID")
    topic_partitions: int = Field(default=4, ge=1, validation_alias="MOMENTUM_TOPIC_PARTITIONS")
    topic_replication_factor: int = Field(
        default=1, ge=1, validation_alias="MOMENTUM_TOPIC_REPLICATION_FACTOR"
    )
    # Faust stores RocksDB tables under this directory.
    data_dir: Path = Field(default=Path(".momentum/worker"), validation_alias="MOMENTUM_DATA_DIR")
    processing_guarantee: str = Field(
        default="at_least_once", validation_alias="MOMENTUM_PROCESSING_GUARANTEE"
    )
    # Group timeouts: with these a worker joins a group on Tansu in about 5 s, where
    # Faust's defaults can take 30 s.
    broker_session_timeout: float = Field(default=10.0, validation_alias="MOMENTUM_SESSION_TIMEOUT")
    broker_heartbeat_interval: float = Field(
        default=1.0, validation_alias="MOMENTUM_HEARTBEAT_INTERVAL"
    )
    broker_rebalance_timeout: float = Field(
        default=10.0, validation_alias="MOMENTUM_REBALANCE_TIMEOUT"
    )
    # How long a fetch may wait for data (ms); None keeps Faust's 1500. Tansu holds a
    # fetch for the whole wait, so the embedded stack sets it low.
    fetch_max_wait_ms: int | None = Field(
        default=None, ge=1, validation_alias="MOMENTUM_FETCH_MAX_WAIT_MS"
    )
    # Take end offsets from a fetch's high watermark too (the larger wins), for
    # brokers whose ListOffsets(latest) answer falls short of the log end: Tansu
    # answers with the last batch's base offset + 1 (see core/end_offsets.py).
    # Used for Faust's changelog highwaters and the registry's `_schemas` replay.
    # The embedded stack sets it. Apache Kafka does not need it: there it changes
    # no figure and costs a connection and a fetch per recovery.
    end_offsets_from_fetch: bool = Field(
        default=False, validation_alias="MOMENTUM_END_OFFSETS_FROM_FETCH"
    )
    store: str = Field(default="rocksdb://", validation_alias="MOMENTUM_STORE")

    # The card provider client: per-attempt timeout, attempts, and circuit breaker.
    payment_timeout_seconds: float = Field(
        default=1.0, gt=0, validation_alias="MOMENTUM_PAYMENT_TIMEOUT"
    )
    payment_concurrency: int = Field(
        default=8, ge=1, validation_alias="MOMENTUM_PAYMENT_CONCURRENCY"
    )
    payment_attempts: int = Field(default=4, ge=1, validation_alias="MOMENTUM_PAYMENT_ATTEMPTS")
    payment_breaker_fail_max: int = Field(
        default=5, ge=1, validation_alias="MOMENTUM_PAYMENT_BREAKER_FAIL_MAX"
    )
    payment_breaker_reset_seconds: float = Field(
        default=30.0, gt=0, validation_alias="MOMENTUM_PAYMENT_BREAKER_RESET_SECONDS"
    )
    # How long a capture, void or refund keeps trying through a provider outage
    # before it is parked in payment-commands.dlq for `momentum dlq replay`.
    payment_settle_patience_seconds: float = Field(
        default=120.0, ge=0, validation_alias="MOMENTUM_PAYMENT_SETTLE_PATIENCE_SECONDS"
    )
    # How long a void that found no payment is asked again, when the order's
    # authorization went unanswered and may still land at the provider.
    payment_late_authorization_seconds: float = Field(
        default=30.0, ge=0, validation_alias="MOMENTUM_PAYMENT_LATE_AUTHORIZATION_SECONDS"
    )

    # Business settings.
    reservation_ttl_seconds: float = Field(
        default=900.0, gt=0, validation_alias="MOMENTUM_RESERVATION_TTL_SECONDS"
    )
    cart_idle_seconds: float = Field(
        default=3600.0, gt=0, validation_alias="MOMENTUM_CART_IDLE_SECONDS"
    )

    # Gateway. No default: the gateway refuses to start without a strong secret
    # (gateway.auth.require_secret); the embedded launcher makes one per stack.
    jwt_secret: SecretStr | None = Field(default=None, validation_alias="MOMENTUM_JWT_SECRET")
    max_body_bytes: int = Field(default=64 * 1024, validation_alias="MOMENTUM_MAX_BODY_BYTES")
    # Per client (token subject, else address): a bucket of `burst` requests refilled
    # at `per_second`, then 429 (gateway.ratelimit). Generous: a person or a shop's
    # front-end stays far below; 0 turns it off.
    rate_limit_per_second: float = Field(
        default=100.0, ge=0, validation_alias="MOMENTUM_RATE_LIMIT_PER_SECOND"
    )
    rate_limit_burst: int = Field(default=200, ge=1, validation_alias="MOMENTUM_RATE_LIMIT_BURST")
    # Requests in progress in one gateway process at once; one more gets 503 at once.
    max_in_flight: int = Field(default=512, ge=1, validation_alias="MOMENTUM_MAX_IN_FLIGHT")

    # Log lines: text for people, or one JSON object per line (core.observe).
    log_format: Literal["text", "json"] = Field(
        default="text", validation_alias="MOMENTUM_LOG_FORMAT"
    )

    # OpenTelemetry tracing (core.tracing): off unless set, e.g. http://jaeger:4318
    # (OTLP over HTTP; spans go to <endpoint>/v1/traces). The standard variable's name.
    otlp_endpoint: str = Field(default="", validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT")

    @property
    def bootstrap_list(self) -> list[str]:
        return [s.strip() for s in self.kafka_bootstrap_servers.split(",") if s.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
