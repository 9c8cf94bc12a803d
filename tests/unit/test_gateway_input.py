"""Bad input is a 4xx with a reason, never a 500 or a 502, and the connection stays usable.

- Numbers JSON does not have (unquoted NaN, Infinity, -Infinity) or that overflow
  (1e400, a 200-digit integer) in any JSON body: 422 naming the number.
- Ids (sku, cart id) follow one documented pattern; `.`, `..` and their
  percent-encodings are 422 before any worker is asked.
- Quantities are bounded at the edge.
- A part that is away is a 503 saying what is unavailable (not where) with Retry-After.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.exceptions import RequestValidationError
from hypothesis import given
from hypothesis import strategies as st

import gateway.main as gateway_main
from gateway.main import create_app, number_problem
from gateway.models import ID_PATTERN, MAX_LINE_QUANTITY, MAX_RESTOCK_QUANTITY
from schemas.serdes import InMemoryRegistry, Serdes
from tests.support.gateway import (
    FakeProducer,
    FakeReader,
    bearer,
    make_settings,
    running_gateway,
)

SELLER = bearer("sam", "seller")
ALICE = bearer("alice", "customer")
JSON = {"content-type": "application/json"}
IDEMPOTENT = {"Idempotency-Key": "k-1"}

# Python's json module reads all of these; JSON has none of them.
BAD_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 200]

# Every route taking a JSON body, with a template holding one number field `{n}`.
NUMBER_BODIES = [
    ("PUT", "/v1/products/tee-m", SELLER, '{"name": "Tee", "price": {n}, "currency": "BRL"}'),
    (
        "PUT",
        "/v1/products/tee-m",
        SELLER,
        '{"name": "Tee", "price": "1.00", "currency": "BRL", "low_stock_threshold": {n}}',
    ),
    ("POST", "/v1/inventory/tee-m/restock", SELLER, '{"quantity": {n}}'),
    ("PUT", "/v1/carts/c1/items/tee-m", ALICE, '{"quantity": {n}}'),
    (
        "POST",
        "/v1/orders",
        ALICE | IDEMPOTENT,
        '{"items": [{"sku": "tee-m", "quantity": {n}}],'
        ' "payment": {"method": "card", "token": "tok_ok"}}',
    ),
    # No number field at all: a stray one is refused just the same.
    (
        "POST",
        "/v1/carts/c1/checkout",
        ALICE | IDEMPOTENT,
        '{"payment": {"method": "card", "token": "tok_ok"}, "tip": {n}}',
    ),
]


@pytest.mark.parametrize(
    "route", NUMBER_BODIES, ids=[f"{r[0]} {r[1]} {r[3][-30:]}" for r in NUMBER_BODIES]
)
async def test_numbers_json_does_not_have_are_422_with_a_reason(
    route: tuple[str, str, dict[str, str], str],
) -> None:
    method, path, headers, template = route
    async with running_gateway() as gw:
        for number in BAD_NUMBERS:
            response = await gw.client.request(
                method, path, content=template.replace("{n}", number), headers=headers | JSON
            )
            assert response.status_code == 422, (number, response.text)
            [error] = response.json()["detail"]
            assert error["type"] == "json_invalid"
            assert number[:6] in error["msg"] or "digits" in error["msg"], error
        assert gw.producer.sent == []


@pytest.mark.parametrize(
    "content_type", [None, "application/json; charset=utf-8", "application/merge-patch+json"]
)
async def test_every_json_content_type_is_checked(content_type: str | None) -> None:
    headers = SELLER if content_type is None else SELLER | {"content-type": content_type}
    async with running_gateway() as gw:
        response = await gw.client.post(
            "/v1/inventory/tee-m/restock", content=b'{"quantity": NaN}', headers=headers
        )
    assert response.status_code == 422, response.text


async def test_finite_numbers_still_pass() -> None:
    async with running_gateway() as gw:
        response = await gw.client.put(
            "/v1/products/tee-m",
            content=b'{"name": "Tee", "price": 12.5, "currency": "BRL", "low_stock_threshold": 0}',
            headers=SELLER | JSON,
        )
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"a": [1, 2.5, -3e10, 1e-400]}', None),
        (b'{"a": NaN}', "NaN is not a JSON number; send a finite number"),
        (b'{"a": {"b": [-Infinity]}}', "-Infinity is not a JSON number; send a finite number"),
        (b'{"a": 1E+999}', "1E+999 is out of range; send a finite number"),
        (b'{"a": -' + b"1" * 101 + b"}", "an integer of 102 digits is out of range"),
        (b'{"a": ' + b"9" * 400 + b".5}", "9" * 400 + ".5 is out of range; send a finite number"),
        (b'{"a": "NaN"}', None),  # a string; the field's own validation judges it
        (b'{"a": ', None),  # malformed: FastAPI's own 422
        (b"[" * 100_000, None),  # too deep for Python's parser: FastAPI's own 400
    ],
)
def test_number_problem(body: bytes, problem: str | None) -> None:
    assert number_problem(body) == problem


@pytest.mark.parametrize("price", ["NaN", "Infinity", "1e400"])
async def test_quoted_non_finite_price_is_422_naming_the_field(price: str) -> None:
    async with running_gateway() as gw:
        response = await gw.client.put(
            "/v1/products/tee-m",
            json={"name": "Tee", "price": price, "currency": "BRL"},
            headers=SELLER,
        )
    assert response.status_code == 422, response.text
    assert [tuple(e["loc"]) for e in response.json()["detail"]] == [("body", "price")]


@pytest.mark.parametrize("wait", ["nan", "NaN", "inf", "-inf", "1e400", "Infinity"])
async def test_non_finite_wait_is_422(wait: str) -> None:
    order_id = "3f5c2a9e-7d41-5b08-a6e3-1c9d4b2e8f70"
    async with running_gateway() as gw:
        response = await gw.client.get(f"/v1/orders/{order_id}?wait={wait}", headers=ALICE)
    assert response.status_code == 422, response.text
    assert [tuple(e["loc"]) for e in response.json()["detail"]] == [("query", "wait")]


async def test_a_non_finite_input_echoed_by_validation_is_written_as_a_string() -> None:
    async def echo_nan() -> None:
        error = {"type": "finite_number", "loc": ("query", "x"), "msg": "no", "input": float("nan")}
        raise RequestValidationError([error, error | {"input": [float("-inf")]}])

    async with running_gateway() as gw:
        gw.app.add_api_route("/echo-nan", echo_nan)
        response = await gw.client.get("/echo-nan")
    assert response.status_code == 422, response.text
    assert [e["input"] for e in response.json()["detail"]] == ["nan", ["-inf"]]


# Ids.

# Each route with an sku or cart id in its path, with `{id}` where the id goes.
ID_ROUTES = [
    ("PUT", "/v1/products/{id}", SELLER, {"name": "Tee", "price": "1.00", "currency": "BRL"}),
    ("GET", "/v1/products/{id}", SELLER, None),
    ("POST", "/v1/inventory/{id}/restock", SELLER, {"quantity": 1}),
    ("GET", "/v1/inventory/{id}", SELLER, None),
    ("PUT", "/v1/carts/c1/items/{id}", ALICE, {"quantity": 1}),
    ("DELETE", "/v1/carts/c1/items/{id}", ALICE, None),
    ("PUT", "/v1/carts/{id}/items/tee-m", ALICE, {"quantity": 1}),
    ("DELETE", "/v1/carts/{id}/items/tee-m", ALICE, None),
    ("GET", "/v1/carts/{id}", ALICE, None),
    (
        "POST",
        "/v1/carts/{id}/checkout",
        ALICE | IDEMPOTENT,
        {"payment": {"method": "card", "token": "tok_ok"}},
    ),
]
# As the server sees them after percent-decoding.
BAD_IDS = [".", "..", "...", ".hidden", "a.b", "-a", "_a", "a b", "a@b", "a%b", "x" * 65, "a\n"]


class Recorder:
    """An ASGI `send` that keeps the response."""

    def __init__(self) -> None:
        self.status = 0
        self.body = b""

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")


async def call_raw(
    app: Any, method: str, path: str, headers: dict[str, str], body: Any
) -> tuple[int, Any]:
    """Call the ASGI app with `path` exactly as given: no client normalises `.` or `..` away."""
    raw = b"" if body is None else json.dumps(body).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8"),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers | JSON).items()],
        "client": ("127.0.0.1", 1),
        "server": ("gateway", 80),
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    recorder = Recorder()
    await app(scope, receive, recorder)
    return recorder.status, json.loads(recorder.body)


@pytest.mark.parametrize("route", ID_ROUTES, ids=[f"{r[0]} {r[1]}" for r in ID_ROUTES])
async def test_ids_outside_the_pattern_are_422_before_any_worker_is_asked(
    route: tuple[str, str, dict[str, str], Any],
) -> None:
    method, template, headers, body = route
    reader = FakeReader(down=True)  # any worker read would be a 503
    async with running_gateway(reader) as gw:
        for bad in BAD_IDS:
            code, answer = await call_raw(gw.app, method, template.format(id=bad), headers, body)
            assert code == 422, (bad, answer)
            [error] = answer["detail"]
            assert error["loc"][0] == "path" and error["type"] == "string_pattern_mismatch"
            assert ID_PATTERN in error["msg"]
        assert gw.producer.sent == []


@pytest.mark.parametrize("encoded", ["%2e%2e", "%2E%2E", "%2e", ".%2e"])
async def test_percent_encoded_dots_are_422_through_a_client(encoded: str) -> None:
    async with running_gateway(FakeReader(down=True)) as gw:
        for path in (f"/v1/inventory/{encoded}", f"/v1/carts/{encoded}", f"/v1/products/{encoded}"):
            response = await gw.client.get(path, headers=ALICE)
            assert response.status_code == 422, (path, response.text)


@pytest.mark.parametrize("bad", [".", "..", "a.b", "x" * 65])
async def test_skus_in_order_bodies_follow_the_same_pattern(bad: str) -> None:
    order = {
        "items": [{"sku": bad, "quantity": 1}],
        "payment": {"method": "card", "token": "tok_ok"},
    }
    async with running_gateway() as gw:
        response = await gw.client.post("/v1/orders", json=order, headers=ALICE | IDEMPOTENT)
        assert gw.producer.sent == []
    assert response.status_code == 422, response.text
    assert [tuple(e["loc"]) for e in response.json()["detail"]] == [("body", "items", 0, "sku")]


@pytest.mark.parametrize("good", ["a", "A1", "tee-black-m", "MUG-001", "x_y", "9" + "z" * 63])
async def test_ids_in_the_pattern_are_accepted(good: str) -> None:
    async with running_gateway() as gw:
        restock = await gw.client.post(
            f"/v1/inventory/{good}/restock", json={"quantity": 1}, headers=SELLER
        )
        cart = await gw.client.put(
            f"/v1/carts/{good}/items/{good}", json={"quantity": 1}, headers=ALICE
        )
    assert (restock.status_code, cart.status_code) == (202, 202), (restock.text, cart.text)


# Quantities.


async def test_restock_is_bounded_per_command() -> None:
    async with running_gateway() as gw:
        most = await gw.client.post(
            "/v1/inventory/tee-m/restock", json={"quantity": MAX_RESTOCK_QUANTITY}, headers=SELLER
        )
        over = await gw.client.post(
            "/v1/inventory/tee-m/restock",
            json={"quantity": MAX_RESTOCK_QUANTITY + 1},
            headers=SELLER,
        )
        int_max = await gw.client.post(
            "/v1/inventory/tee-m/restock", json={"quantity": 2**31 - 1}, headers=SELLER
        )
    assert most.status_code == 202
    assert (over.status_code, int_max.status_code) == (422, 422)
    assert over.json()["detail"][0]["loc"] == ["body", "quantity"]


@pytest.mark.parametrize("quantity", [0, MAX_LINE_QUANTITY + 1, 2**31, 2**63])
async def test_order_and_cart_lines_are_bounded(quantity: int) -> None:
    order = {
        "items": [{"sku": "tee-m", "quantity": quantity}],
        "payment": {"method": "card", "token": "tok_ok"},
    }
    async with running_gateway() as gw:
        placed = await gw.client.post("/v1/orders", json=order, headers=ALICE | IDEMPOTENT)
        carted = await gw.client.put(
            "/v1/carts/c1/items/tee-m", json={"quantity": quantity}, headers=ALICE
        )
        assert gw.producer.sent == []
    assert (placed.status_code, carted.status_code) == (422, 422)


# Parts away: what, not where, and when to come back.


def assert_says_what_not_where(response: httpx.Response) -> None:
    detail = response.json()["detail"]
    for internal in ("http://", "127.0.0.1", "worker:", "9092", "Errno"):
        assert internal not in json.dumps(detail), detail


async def test_worker_away_is_503_with_retry_after_and_no_address() -> None:
    async with running_gateway(FakeReader(down=True)) as gw:
        response = await gw.client.get("/v1/inventory/tee-m", headers=ALICE)
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert "unavailable" in response.json()["detail"]
    assert_says_what_not_where(response)


async def test_state_reader_unreachable_worker_names_no_url() -> None:
    from gateway.state import StateReader

    reader = StateReader("http://127.0.0.1:9", retry_delay=0)
    async with running_gateway() as gw:
        gw.app.state.state_reader = reader
        response = await gw.client.get("/v1/products/tee-m", headers=ALICE)
    await reader.aclose()
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert_says_what_not_where(response)


async def test_kafka_away_is_503_with_retry_after_and_no_address() -> None:
    async with running_gateway() as gw:
        gw.producer.down = True
        response = await gw.client.post(
            "/v1/inventory/tee-m/restock", json={"quantity": 1}, headers=SELLER
        )
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert "Kafka unavailable" in response.json()["detail"]
    assert_says_what_not_where(response)


async def test_registry_away_is_503_with_retry_after_and_no_address() -> None:
    settings = make_settings(SCHEMA_REGISTRY_URL="http://127.0.0.1:9")
    # No injected serdes: the command schemas must be registered at the (closed) registry.
    app = create_app(settings, FakeProducer(), FakeReader())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            response = await client.post(
                "/v1/inventory/tee-m/restock", json={"quantity": 1}, headers=SELLER
            )
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert "schema registry unavailable" in response.json()["detail"]
    assert_says_what_not_where(response)


async def test_not_ready_is_503_with_retry_after_and_no_address() -> None:
    async with running_gateway(SCHEMA_REGISTRY_URL="http://127.0.0.1:9") as gw:
        gw.producer.down = True
        response = await gw.client.get("/ready")
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert response.json()["checks"] == {"kafka": "unavailable", "schema_registry": "unavailable"}
    assert_says_what_not_where(response)


async def test_malformed_worker_answer_is_502_without_internals() -> None:
    reader = FakeReader(carts={"c1": {"cart_id": "c1"}})
    async with running_gateway(reader) as gw:
        response = await gw.client.get("/v1/carts/c1", headers=ALICE)
    assert response.status_code == 502
    assert response.json()["detail"] == "a worker answered with an unexpected body"


# The connection stays usable: a real uvicorn, two requests on one socket.


@contextmanager
def serving_gateway() -> Iterator[tuple[int, FakeProducer]]:
    producer = FakeProducer()
    app = create_app(make_settings(), producer, FakeReader(), serdes=Serdes(InMemoryRegistry()))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            threading.Event().wait(0.02)
        [listener] = server.servers
        port = listener.sockets[0].getsockname()[1]
        yield port, producer
    finally:
        server.should_exit = True
        thread.join()


def read_response(conn: socket.socket, buffer: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body; what follows stays in `buffer`."""
    while b"\r\n\r\n" not in buffer:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buffer += chunk
    head, _, _ = bytes(buffer).partition(b"\r\n\r\n")
    del buffer[: len(head) + 4]
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    length = int(headers["content-length"])
    while len(buffer) < length:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-body")
        buffer += chunk
    body = bytes(buffer[:length])
    del buffer[:length]
    return int(status_line.split()[1]), headers, body


def request_bytes(method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: gateway", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_keep_alive_connection_survives_bad_numbers_and_bad_ids() -> None:
    good = b'{"quantity": 3}'
    with (
        serving_gateway() as (port, producer),
        socket.create_connection(("127.0.0.1", port)) as conn,
    ):
        conn.settimeout(30)
        buffer = bytearray()
        answers = []
        for method, path, body in [
            ("POST", "/v1/inventory/tee-m/restock", b'{"quantity": NaN}'),
            ("POST", "/v1/inventory/tee-m/restock", b'{"quantity": 1e400}'),
            ("POST", "/v1/inventory/../restock", good),
            ("GET", "/v1/inventory/..", b""),
            ("POST", "/v1/inventory/tee-m/restock", good),
        ]:
            conn.sendall(request_bytes(method, path, body, SELLER | JSON))
            status, headers, _ = read_response(conn, buffer)
            answers.append(status)
            assert headers.get("connection") != "close", (path, headers)
    assert answers == [422, 422, 422, 422, 202]
    assert len(producer.sent) == 1


@given(
    st.lists(
        st.one_of(
            st.integers(min_value=-(10**150), max_value=10**150).map(str),
            st.floats(allow_nan=True, allow_infinity=True).map(repr),
            st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1E+309", "1" * 320]),
            st.text(max_size=8).map(lambda t: json.dumps(t)),
        ),
        max_size=6,
    )
)
def test_number_problem_skips_the_parse_only_where_it_could_find_nothing(
    items: list[str],
) -> None:
    # The quick scan must never hide a problem the full parse finds.
    body = ("[" + ",".join(items) + "]").replace("inf", "Infinity").replace("nan", "NaN").encode()
    full = gateway_main._MAY_HOLD_BAD_NUMBER
    try:
        gateway_main._MAY_HOLD_BAD_NUMBER = re.compile(b"")  # matches every body
        expected = number_problem(body)
    finally:
        gateway_main._MAY_HOLD_BAD_NUMBER = full
    assert number_problem(body) == expected
