"""The app around the routes: health, readiness, body limits, OpenAPI, state reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from core.topics import CART_COMMANDS, INVENTORY_COMMANDS, ORDER_COMMANDS, value_codec
from gateway.auth import Principal, Role
from gateway.commands import client_command_topics, restock_command, upsert_product_command
from gateway.main import create_app
from gateway.models import InventoryView, ProductUpsert, ProductView, RejectionsView
from gateway.state import RecentOrder, RecentOrders, StateReader, WorkerUnavailable
from schemas.serdes import InMemoryRegistry, Serdes
from tests.support.gateway import (
    CLOSED_URL,
    FakeProducer,
    FakeReader,
    bearer,
    make_settings,
    running_gateway,
)

ORDER = {"items": [{"sku": "tee-m", "quantity": 1}], "payment": {"method": "card", "token": "t"}}


# Health and readiness.


async def test_health() -> None:
    async with running_gateway() as gw:
        response = await gw.client.get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_ready_is_503_naming_the_registry_when_it_is_unreachable() -> None:
    async with running_gateway(SCHEMA_REGISTRY_URL=CLOSED_URL) as gw:
        response = await gw.client.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["detail"] == "not ready: schema_registry"
    assert body["checks"]["kafka"] == "ok"
    assert body["checks"]["schema_registry"] == "unavailable"


def use_registry(app: object, handler: httpx.MockTransport) -> None:
    """Point the app's readiness check at a mock registry."""
    state = app.state  # type: ignore[attr-defined]
    state.registry_http = httpx.AsyncClient(base_url="http://registry", transport=handler)


async def test_ready_is_200_when_kafka_and_registry_answer() -> None:
    seen: list[str] = []

    def registry(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json=["orders-value"])

    async with running_gateway() as gw:
        use_registry(gw.app, httpx.MockTransport(registry))
        response = await gw.client.get("/ready")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "checks": {"kafka": "ok", "schema_registry": "ok"},
    }
    assert seen == ["/subjects"]


async def test_ready_is_503_naming_kafka_when_it_is_down() -> None:
    async with running_gateway() as gw:
        use_registry(gw.app, httpx.MockTransport(lambda _: httpx.Response(200, json=[])))
        gw.producer.down = True
        response = await gw.client.get("/ready")
    assert response.status_code == 503
    assert response.json()["detail"] == "not ready: kafka"


async def test_lifespan_starts_and_stops_the_parts() -> None:
    async with running_gateway() as gw:
        assert gw.producer.started and not gw.producer.stopped
    assert gw.producer.stopped
    assert gw.reader.closed


# Body size.


async def test_declared_oversized_body_is_413() -> None:
    async with running_gateway(MOMENTUM_MAX_BODY_BYTES=100) as gw:
        body = ORDER | {"payment": {"method": "card", "token": "t" * 200}}
        response = await gw.client.post(
            "/v1/orders", json=body, headers=bearer() | {"Idempotency-Key": "k"}
        )
        assert response.status_code == 413
        assert "100 bytes" in response.json()["detail"]
        assert gw.producer.sent == []


async def test_streamed_oversized_body_is_413() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: only counting the streamed body catches this.
        for _ in range(10):
            yield b" " * 30

    async with running_gateway(MOMENTUM_MAX_BODY_BYTES=100) as gw:
        response = await gw.client.post(
            "/v1/orders", content=chunks(), headers=bearer() | {"Idempotency-Key": "k"}
        )
        assert "content-length" not in response.request.headers
        assert response.status_code == 413
        assert gw.producer.sent == []


async def test_streamed_body_under_the_limit_reaches_the_route() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"quantity":'
        yield b" 5}"

    async with running_gateway(MOMENTUM_MAX_BODY_BYTES=100) as gw:
        response = await gw.client.post(
            "/v1/inventory/tee-m/restock",
            content=chunks(),
            headers=bearer("sam", "seller") | {"Content-Type": "application/json"},
        )
    assert response.status_code == 202, response.text


# OpenAPI.


async def test_docs_load_swagger_ui_from_the_gateway_not_a_cdn() -> None:
    async with running_gateway() as gw:
        page = await gw.client.get("/docs")
        assert page.status_code == 200
        assert "cdn" not in page.text.lower()
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
            [url] = [part.split('"')[0] for part in page.text.split('"/')[1:] if asset in part]
            served = await gw.client.get("/" + url)
            assert served.status_code == 200 and len(served.content) > 10_000, url


def test_openapi_documents_auth_models_and_errors() -> None:
    schema = create_app(state_reader=FakeReader()).openapi()
    assert schema["info"]["title"] == "Momentum gateway"
    assert schema["info"]["description"]
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for name in (
        "PlaceOrderRequest",
        "OrderView",
        "ProductUpsert",
        "InventoryView",
        "ErrorBody",
        "RejectionsView",
    ):
        assert name in schema["components"]["schemas"]
    expected = {
        ("/v1/products/{sku}", "put"): {"401", "403", "413", "422"},
        ("/v1/products/{sku}", "get"): {"401", "404", "422"},
        ("/v1/inventory/{sku}/restock", "post"): {"401", "403", "413", "422"},
        ("/v1/inventory/{sku}", "get"): {"401", "404", "422"},
        ("/v1/orders", "post"): {"400", "401", "403", "409", "413", "422"},
        ("/v1/orders/{order_id}", "get"): {"401", "404", "422"},
        # The saga decides whether a cancel may happen: no 404 or 409 from here any more.
        ("/v1/orders/{order_id}/cancel", "post"): {"401", "403", "422"},
        ("/v1/rejections", "get"): {"401", "403", "422"},
    }
    for (path, method), codes in expected.items():
        operation = schema["paths"][path][method]
        assert codes <= set(operation["responses"]), (path, method)
        assert operation["security"] == [{"HTTPBearer": []}], (path, method)
    assert "security" not in schema["paths"]["/health"]["get"]


# StateReader against a mock worker.


def mock_worker(*answers: httpx.Response | Exception) -> tuple[httpx.MockTransport, list[str]]:
    queue = list(answers)
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handler), paths


STOCK = {"sku": "tee-m", "on_hand": 5, "reserved": 1, "available": 4}


async def test_state_reader_reads_and_maps_404_to_none() -> None:
    transport, paths = mock_worker(httpx.Response(200, json=STOCK), httpx.Response(404))
    reader = StateReader("http://worker", transport=transport)
    try:
        found = await reader.read("inventory", "tee-m", InventoryView)
        missing = await reader.read("products", "nope", ProductView)
    finally:
        await reader.aclose()
    assert found is not None and found.available == 4
    assert missing is None
    assert paths == ["/inventory/tee-m/", "/products/nope/"]


async def test_state_reader_asks_for_rejections_by_query_parameter() -> None:
    # Requester ids are token subjects: "/" or "." must not become path segments.
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, json={"requested_by": "a/../b", "rejections": []})

    reader = StateReader("http://worker", transport=httpx.MockTransport(handler))
    try:
        log = await reader.read("rejections", "a/../b", RejectionsView, query="requested_by")
    finally:
        await reader.aclose()
    assert log is not None and log.requested_by == "a/../b"
    [url] = seen
    assert (url.path, url.params["requested_by"]) == ("/rejections/", "a/../b")


async def test_state_reader_asks_the_worker_to_hold_a_waiting_read() -> None:
    seen: list[tuple[httpx.URL, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url, request.extensions["timeout"]["read"]))
        return httpx.Response(200, json=STOCK)

    reader = StateReader("http://worker", timeout=2.0, transport=httpx.MockTransport(handler))
    try:
        await reader.read("inventory", "tee-m", InventoryView, wait=1.0)
        await reader.read("inventory", "tee-m", InventoryView)
    finally:
        await reader.aclose()
    (held, held_timeout), (plain, plain_timeout) = seen
    assert (held.path, held.params["wait"], held_timeout) == ("/inventory/tee-m/", "1.000", 3.0)
    assert ("wait" not in plain.params, plain_timeout) == (True, 2.0)


async def test_state_reader_retries_once() -> None:
    transport, paths = mock_worker(httpx.ConnectError("refused"), httpx.Response(200, json=STOCK))
    reader = StateReader("http://worker", transport=transport, retry_delay=0)
    try:
        assert await reader.read("inventory", "tee-m", InventoryView) is not None
    finally:
        await reader.aclose()
    assert len(paths) == 2


@pytest.mark.parametrize(
    ("answers", "malformed"),
    [
        ((httpx.ConnectError("refused"), httpx.ConnectError("refused")), False),
        ((httpx.Response(500), httpx.Response(503)), False),
        ((httpx.Response(200, json={"sku": "tee-m"}),), True),
        ((httpx.Response(200, text="<html>"),), True),
        ((httpx.Response(400),), True),
    ],
)
async def test_state_reader_failures(
    answers: tuple[httpx.Response | Exception, ...], malformed: bool
) -> None:
    transport, paths = mock_worker(*answers)
    reader = StateReader("http://worker", transport=transport, retry_delay=0)
    try:
        with pytest.raises(WorkerUnavailable) as caught:
            await reader.read("inventory", "tee-m", InventoryView)
    finally:
        await reader.aclose()
    assert caught.value.malformed is malformed
    # Asked twice while no worker answers; an answer against the contract is not asked again.
    assert len(paths) == (1 if malformed else 2)


async def test_malformed_worker_answer_is_502() -> None:
    transport, _ = mock_worker(httpx.Response(200, json={"sku": "tee-m"}))
    reader = StateReader("http://worker", transport=transport)
    async with running_gateway() as gw:
        gw.app.state.state_reader = reader
        response = await gw.client.get("/v1/inventory/tee-m", headers=bearer())
    await reader.aclose()
    assert response.status_code == 502
    assert "unexpected body" in response.json()["detail"]


# Recent orders.


def test_recent_orders_first_claim_wins_and_oldest_is_evicted() -> None:
    recent = RecentOrders(maxsize=2)
    first = RecentOrder("alice", "h1")
    assert recent.claim("o1", first) is first
    assert recent.claim("o1", RecentOrder("alice", "h2")) is first
    recent.claim("o2", RecentOrder("bob", "h"))
    assert recent.get("o1") is first  # touched: o2 is now the oldest
    recent.claim("o3", RecentOrder("carol", "h"))
    assert len(recent) == 2
    assert recent.get("o2") is None
    assert recent.get("o1") is first


# Command schemas and their wire shape.


class RecordingRegistry(InMemoryRegistry):
    def __init__(self) -> None:
        super().__init__()
        self.subjects: list[str] = []

    def register(self, subject: str, schema: str) -> int:
        self.subjects.append(subject)
        return super().register(subject, schema)


def test_client_command_topics_are_those_carrying_client_commands() -> None:
    assert client_command_topics() == (INVENTORY_COMMANDS, ORDER_COMMANDS, CART_COMMANDS)


async def test_start_up_registers_every_command_topic_the_gateway_sends_to() -> None:
    registry = RecordingRegistry()
    app = create_app(make_settings(), FakeProducer(), FakeReader(), serdes=Serdes(registry))
    async with app.router.lifespan_context(app):
        pass
    assert sorted(registry.subjects) == [
        "cart-commands-value",
        "inventory-commands-value",
        "order-commands-value",
    ]


def test_inventory_commands_encode_as_before_the_envelope_wrote_origin() -> None:
    # The gateway's InventoryCommands used to leave `origin` out; the envelope now
    # writes None, the Avro default: the bytes on the wire are the same.
    codec = value_codec(INVENTORY_COMMANDS, Serdes(InMemoryRegistry()))
    seller = Principal(sub="sam", role=Role.SELLER)
    for command in (
        restock_command("tee-m", 3, seller),
        upsert_product_command(
            "tee-m", ProductUpsert(name="Tee", price=Decimal("10.00"), currency="BRL"), seller
        ),
    ):
        assert command["origin"] is None
        without_origin = {k: v for k, v in command.items() if k != "origin"}
        assert codec.encode(command) == codec.encode(without_origin)
