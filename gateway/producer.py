"""The gateway's Kafka producer: already-encoded values, UTF-8 keys, acks=all.

aiokafka's default partitioner is murmur2 over the key bytes, the same as
Faust's and the Java client's, so a command keyed by sku or order id lands on
the partition whose worker owns that key's table rows.

The gateway must start (and answer /health and a 503 /ready) while Kafka is
away, so a failed start is not fatal: the producer is (re)created on the next
send or readiness check.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from core.observe import outgoing_headers

log = logging.getLogger(__name__)


class ProducerUnavailable(RuntimeError):
    """Kafka could not take the message; the reason is safe to show the caller."""


class CommandProducer(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def send(self, topic: str, key: str, value: bytes) -> None: ...
    async def check(self) -> str | None:
        """None when Kafka is reachable, else why not."""
        ...


class KafkaCommandProducer:
    def __init__(
        self,
        bootstrap_servers: list[str],
        *,
        request_timeout_ms: int = 10_000,
        check_timeout: float = 3.0,
        security: dict[str, Any] | None = None,
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        # SASL/TLS keyword arguments (core.kafka_clients.aiokafka_config).
        self._security = security or {}
        self._request_timeout_ms = request_timeout_ms
        self._check_timeout = check_timeout
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        try:
            await self._ensure_started()
        except ProducerUnavailable as exc:
            log.warning("Kafka producer not started yet (%s); will retry on first use", exc)

    async def stop(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def send(self, topic: str, key: str, value: bytes) -> None:
        producer = await self._ensure_started()
        try:
            # The request's correlation id goes with the command (core.observe).
            await producer.send_and_wait(
                topic, value=value, key=key.encode("utf-8"), headers=outgoing_headers()
            )
        except KafkaError as exc:
            raise ProducerUnavailable(f"Kafka did not accept the command: {exc}") from exc

    async def check(self) -> str | None:
        try:
            await asyncio.wait_for(self._probe(), self._check_timeout)
        except ProducerUnavailable as exc:
            return str(exc)
        except (KafkaError, TimeoutError, OSError) as exc:
            return f"Kafka unreachable: {type(exc).__name__}: {exc}"
        return None

    async def _probe(self) -> None:
        producer = await self._ensure_started()
        # A fresh metadata round trip, not the cached cluster view.
        await producer.client.fetch_all_metadata()

    async def _ensure_started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is not None:
                return self._producer
            producer = AIOKafkaProducer(
                bootstrap_servers=self._bootstrap_servers,
                acks="all",
                request_timeout_ms=self._request_timeout_ms,
                **self._security,
            )
            try:
                await producer.start()
            except BaseException as exc:
                # A half-started producer holds tasks and sockets; drop it whole
                # (also when a readiness timeout cancels us mid-start).
                await producer.stop()
                if isinstance(exc, KafkaError | OSError):
                    raise ProducerUnavailable(f"Kafka unreachable: {exc}") from exc
                raise
            self._producer = producer
            return producer
