"""Fakes and helpers shared by the gateway unit tests (no broker, no workers).

A `Gateway` is the real app with a recording producer, a scripted state reader
and an in-memory schema registry; commands it sends are decoded with the same
codecs, so tests assert on content, not on bytes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import jwt
from pydantic import BaseModel, ValidationError

from core.settings import Settings
from core.topics import TopicSpec, value_codec
from gateway.main import create_app
from gateway.producer import ProducerUnavailable
from gateway.state import WorkerUnavailable
from schemas.serdes import InMemoryRegistry, Serdes

SECRET = "unit-test-secret-of-at-least-32-bytes"
# A port nothing listens on: connections are refused at once.
CLOSED_URL = "http://127.0.0.1:9"


def bearer(
    sub: object = "alice", role: object = "customer", *, secret: str = SECRET, **claims: Any
) -> dict[str, str]:
    """Authorization header for a token; `claims` override or, set to None, drop claims."""
    body: dict[str, Any] = {"sub": sub, "role": role, "exp": int(time.time()) + 86400}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return {"Authorization": f"Bearer {jwt.encode(body, secret, algorithm='HS256')}"}


class FakeProducer:
    """Records what would be sent; can be told Kafka is away."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, bytes]] = []
        self.started = False
        self.stopped = False
        self.down = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, key: str, value: bytes) -> None:
        if self.down:
            raise ProducerUnavailable("Kafka unreachable: test")
        self.sent.append((topic, key, value))

    async def check(self) -> str | None:
        return "Kafka unreachable: test" if self.down else None


M = TypeVar("M", bound=BaseModel)
OrderScript = Callable[[int], dict[str, Any] | None]


@dataclass
class FakeReader:
    """Worker state as plain dicts; an order may be a script of the poll number."""

    orders: dict[str, dict[str, Any] | OrderScript] = field(default_factory=dict)
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    stock: dict[str, dict[str, Any]] = field(default_factory=dict)
    carts: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Requester -> their rejections, newest first, as the worker view lists them.
    rejection_logs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Any other worker view: view -> key -> body.
    other_views: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    order_reads: int = 0
    # The view of every read asked of the worker (also those that failed: it is down).
    calls: list[str] = field(default_factory=list)
    down: bool = False
    closed: bool = False

    async def read(
        self, view: str, key: str, model: type[M], *, query: str | None = None, wait: float = 0
    ) -> M | None:
        """`key` of the worker view `view`, from the dict that plays it (at once: a `wait`
        is not held, as by a worker that does not hold requests)."""
        self._maybe_fail(view)
        entry: dict[str, Any] | OrderScript | None
        if view == "orders":
            self.order_reads += 1
            entry = self.orders.get(key)
            if callable(entry):
                entry = entry(self.order_reads)
        elif view == "rejections":
            entries = self.rejection_logs.get(key)
            entry = None if entries is None else {"requested_by": key, "rejections": entries}
        else:
            entry = self.views(view).get(key)
        if entry is None:
            return None
        try:
            return model.model_validate(entry)
        except ValidationError as exc:
            # As the real reader: a body against the contract is the worker's fault (502).
            raise WorkerUnavailable(f"worker answered {view}/{key}: {exc}", malformed=True) from exc

    def views(self, view: str) -> dict[str, dict[str, Any]]:
        known = {"products": self.products, "inventory": self.stock, "carts": self.carts}
        return known[view] if view in known else self.other_views.setdefault(view, {})

    async def aclose(self) -> None:
        self.closed = True

    def _maybe_fail(self, view: str) -> None:
        self.calls.append(view)
        if self.down:
            raise WorkerUnavailable("worker unreachable at http://worker: ConnectError")


def stored_order(
    order_id: str,
    customer_id: str = "alice",
    status: str = "PENDING",
    request_hash: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """An order as the worker view returns it."""
    order = {
        "order_id": order_id,
        "customer_id": customer_id,
        "status": status,
        "reason": None,
        "lines": [{"sku": "tee-m", "quantity": 2, "unit_price": "10.00"}],
        "total": "20.00",
        "currency": "BRL",
        "created_at": "2026-11-01T10:00:00+00:00",
        "updated_at": "2026-11-01T10:00:01+00:00",
        "request_hash": request_hash,
    }
    order.update(extra)
    return order


@dataclass
class Gateway:
    client: httpx.AsyncClient
    producer: FakeProducer
    reader: FakeReader
    serdes: Serdes
    app: Any

    def commands(self, topic: TopicSpec) -> list[tuple[str, dict[str, Any]]]:
        """(key, decoded command) for everything sent to `topic`."""
        codec = value_codec(topic, self.serdes)
        return [
            (key, codec.decode(value))
            for name, key, value in self.producer.sent
            if name == topic.name
        ]


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "MOMENTUM_JWT_SECRET": SECRET,
        "SCHEMA_REGISTRY_URL": CLOSED_URL,
        "WORKER_URL": CLOSED_URL,
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
        "MOMENTUM_MAX_BODY_BYTES": 4096,
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running_gateway(
    reader: FakeReader | None = None, **settings: Any
) -> AsyncIterator[Gateway]:
    """The app, its lifespan entered, behind an in-process httpx client."""
    producer = FakeProducer()
    reader = reader or FakeReader()
    serdes = Serdes(InMemoryRegistry())
    app = create_app(make_settings(**settings), producer, reader, serdes=serdes)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield Gateway(client, producer, reader, serdes, app)


def error_locs(response: httpx.Response) -> list[tuple[Any, ...]]:
    """The `loc` of every validation error in a 422 answer."""
    assert response.status_code == 422, response.text
    return [tuple(error["loc"]) for error in response.json()["detail"]]
