"""Carts routes: customer-only access, validation, writes that ask no worker, checkout ids."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import pytest

from core.topics import CART_COMMANDS
from gateway.routes.carts import cart_order_id
from schemas.messages import CHECKOUT_CART, REMOVE_CART_LINE, SET_CART_LINE
from tests.support.gateway import FakeReader, bearer, error_locs, running_gateway

ALICE = bearer("alice", "customer")
BOB = bearer("bob", "customer")
CHECKOUT = {"payment": {"method": "card", "token": "tok_visa"}}
ORDER_ID = cart_order_id("c1")


def stored_cart(
    customer_id: str = "alice",
    status: str = "OPEN",
    items: dict[str, int] | None = None,
    order_id: str | None = None,
) -> dict[str, Any]:
    lines = {"tee-m": 2} if items is None else items
    return {
        "cart_id": "c1",
        "customer_id": customer_id,
        "status": status,
        "items": [{"sku": sku, "quantity": q} for sku, q in sorted(lines.items())],
        "order_id": order_id,
    }


def reader_with(**cart: Any) -> FakeReader:
    return FakeReader(carts={"c1": stored_cart(**cart)})


def checkout_headers(key: str = "key-1", auth: dict[str, str] = ALICE) -> dict[str, str]:
    return auth | {"Idempotency-Key": key}


# Roles and tokens.

ROUTES = [
    ("PUT", "/v1/carts/c1/items/tee-m", {"quantity": 1}),
    ("DELETE", "/v1/carts/c1/items/tee-m", None),
    ("GET", "/v1/carts/c1", None),
    ("POST", "/v1/carts/c1/checkout", CHECKOUT),
]


@pytest.mark.parametrize(("method", "url", "body"), ROUTES)
@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, 401),
        ({"Authorization": "Bearer not-a-jwt"}, 401),
        (bearer("alice", "customer", secret="another-secret-of-at-least-32-bytes!"), 401),
        (bearer("sam", "seller") | {"Idempotency-Key": "k"}, 403),
        (bearer("root", "admin") | {"Idempotency-Key": "k"}, 403),
    ],
)
async def test_only_customers_with_a_valid_token(
    method: str, url: str, body: dict[str, Any] | None, headers: dict[str, str], code: int
) -> None:
    async with running_gateway(reader_with()) as gw:
        response = await gw.client.request(method, url, json=body, headers=headers)
        assert response.status_code == code, response.text
        assert gw.producer.sent == []


# Setting and removing lines.


async def test_put_item_sends_set_cart_line_keyed_by_cart() -> None:
    async with running_gateway(FakeReader()) as gw:
        response = await gw.client.put(
            "/v1/carts/c1/items/tee-m", json={"quantity": 3}, headers=ALICE
        )
        assert response.status_code == 202, response.text
        [(key, command)] = gw.commands(CART_COMMANDS)
        assert response.json() == {
            "cart_id": "c1",
            "accepted": True,
            "command_id": command["command_id"],
        }
    assert key == "c1" == command["cart_id"]
    assert command["customer_id"] == "alice"
    uuid.UUID(command["command_id"])
    assert command["payload"] == (SET_CART_LINE, {"sku": "tee-m", "quantity": 3})


async def test_delete_item_sends_remove_cart_line() -> None:
    async with running_gateway(reader_with()) as gw:
        response = await gw.client.delete("/v1/carts/c1/items/tee-m", headers=ALICE)
        assert response.status_code == 202, response.text
        [(key, command)] = gw.commands(CART_COMMANDS)
    assert key == "c1"
    assert command["payload"] == (REMOVE_CART_LINE, {"sku": "tee-m"})


@pytest.mark.parametrize(
    ("quantity", "code"), [(1, 202), (1000, 202), (0, 422), (1001, 422), ("2", 422), (1.5, 422)]
)
async def test_quantity_must_be_an_integer_from_1_to_1000(quantity: Any, code: int) -> None:
    async with running_gateway(FakeReader()) as gw:
        response = await gw.client.put(
            "/v1/carts/c1/items/tee-m", json={"quantity": quantity}, headers=ALICE
        )
        assert response.status_code == code, response.text
        if code == 422:
            assert ("body", "quantity") in error_locs(response)
            assert gw.producer.sent == []


@pytest.mark.parametrize(
    ("url", "body", "loc"),
    [
        ("/v1/carts/bad%20id/items/tee-m", {"quantity": 1}, ("path", "cart_id")),
        (f"/v1/carts/{'c' * 65}/items/tee-m", {"quantity": 1}, ("path", "cart_id")),
        ("/v1/carts/c1/items/bad%20sku", {"quantity": 1}, ("path", "sku")),
        ("/v1/carts/c1/items/tee-m", {"quantity": 1, "qty": 2}, ("body", "qty")),
        ("/v1/carts/c1/items/tee-m", {}, ("body", "quantity")),
    ],
)
async def test_bad_ids_and_bodies_are_422(
    url: str, body: dict[str, Any], loc: tuple[Any, ...]
) -> None:
    async with running_gateway(FakeReader()) as gw:
        response = await gw.client.put(url, json=body, headers=ALICE)
        assert loc in error_locs(response)
        assert gw.producer.sent == []


async def test_cart_id_of_64_allowed_characters_is_fine() -> None:
    async with running_gateway(FakeReader()) as gw:
        response = await gw.client.put(
            f"/v1/carts/{'aB_-9z' * 10}abcd/items/tee-m", json={"quantity": 1}, headers=ALICE
        )
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(("method", "url", "body"), [r for r in ROUTES if r[0] != "GET"])
@pytest.mark.parametrize(
    "reader",
    [
        pytest.param(reader_with(customer_id="alice"), id="another-customers-cart"),
        pytest.param(reader_with(customer_id="bob", status="CHECKED_OUT"), id="closed-cart"),
        pytest.param(reader_with(customer_id="bob", items={}), id="empty-cart"),
        pytest.param(FakeReader(down=True), id="worker-down"),
    ],
)
async def test_writes_are_sent_for_the_cart_rule_to_decide_without_asking_a_worker(
    method: str, url: str, body: dict[str, Any] | None, reader: FakeReader
) -> None:
    """Ownership, closed, empty and full carts are the cart agent's decisions (it records
    a refusal for the caller); the gateway only checks the token and the request."""
    async with running_gateway(reader) as gw:
        response = await gw.client.request(
            method, url, json=body, headers=checkout_headers(auth=BOB)
        )
        assert response.status_code == 202, response.text
        [(key, command)] = gw.commands(CART_COMMANDS)
        assert gw.reader.calls == []
    assert (key, command["customer_id"]) == ("c1", "bob")


# Reading.


async def test_get_cart_shows_lines_and_status_to_its_customer() -> None:
    reader = reader_with(items={"tee-m": 2, "mug": 1}, status="CHECKED_OUT", order_id=ORDER_ID)
    async with running_gateway(reader) as gw:
        response = await gw.client.get("/v1/carts/c1", headers=ALICE)
    assert response.status_code == 200
    assert response.json() == {
        "cart_id": "c1",
        "customer_id": "alice",
        "status": "CHECKED_OUT",
        "items": [{"sku": "mug", "quantity": 1}, {"sku": "tee-m", "quantity": 2}],
    }


async def test_unknown_cart_is_404() -> None:
    async with running_gateway(FakeReader()) as gw:
        response = await gw.client.get("/v1/carts/c1", headers=ALICE)
    assert response.status_code == 404


async def test_another_customers_cart_reads_as_404() -> None:
    async with running_gateway(reader_with(customer_id="alice")) as gw:
        response = await gw.client.get("/v1/carts/c1", headers=BOB)
    assert response.status_code == 404
    assert "c1" in response.json()["detail"]


async def test_malformed_worker_cart_is_502_and_worker_down_is_503() -> None:
    async with running_gateway(FakeReader(carts={"c1": {"cart_id": "c1"}})) as gw:
        malformed = await gw.client.get("/v1/carts/c1", headers=ALICE)
    async with running_gateway(FakeReader(down=True)) as gw:
        down = await gw.client.get("/v1/carts/c1", headers=ALICE)
    assert (malformed.status_code, down.status_code) == (502, 503)
    assert down.headers["Retry-After"] == "1"


# Checkout.


def canonical_hash(body: dict[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


async def test_checkout_sends_checkout_cart_with_the_carts_order_id() -> None:
    async with running_gateway(reader_with()) as gw:
        response = await gw.client.post(
            "/v1/carts/c1/checkout", json=CHECKOUT, headers=checkout_headers()
        )
        assert response.status_code == 202, response.text
        [(key, command)] = gw.commands(CART_COMMANDS)
        assert response.json() == {"order_id": ORDER_ID, "command_id": command["command_id"]}
        assert response.headers["Location"] == f"/v1/orders/{ORDER_ID}"
    assert key == "c1"
    assert command["customer_id"] == "alice"
    assert command["payload"] == (
        CHECKOUT_CART,
        {
            "order_id": ORDER_ID,
            "payment": {"method": "card", "token": "tok_visa"},
            "request_hash": canonical_hash(CHECKOUT),
        },
    )


async def test_order_id_is_per_cart_whatever_the_key() -> None:
    assert cart_order_id("c1") == ORDER_ID
    assert cart_order_id("c2") != ORDER_ID
    async with running_gateway(reader_with()) as gw:
        first = await gw.client.post(
            "/v1/carts/c1/checkout", json=CHECKOUT, headers=checkout_headers("k1")
        )
        retry = await gw.client.post(
            "/v1/carts/c1/checkout", json=CHECKOUT, headers=checkout_headers("k2")
        )
        # Both sent: the rule checks out once, the saga keeps one PlaceOrder per order id.
        ids = {command["payload"][1]["order_id"] for _, command in gw.commands(CART_COMMANDS)}
    assert first.json()["order_id"] == retry.json()["order_id"] == ORDER_ID
    assert ids == {ORDER_ID}


async def test_checkout_of_a_cart_not_yet_seen_is_sent_for_the_rule_to_decide() -> None:
    async with running_gateway(FakeReader()) as gw:
        put = await gw.client.put("/v1/carts/c1/items/tee-m", json={"quantity": 1}, headers=ALICE)
        checkout = await gw.client.post(
            "/v1/carts/c1/checkout", json=CHECKOUT, headers=checkout_headers()
        )
        assert (put.status_code, checkout.status_code) == (202, 202)
        kinds = [command["payload"][0] for _, command in gw.commands(CART_COMMANDS)]
        # A checkout names no customer for the order: the cart rule takes its owner.
        assert gw.app.state.recent_orders.get(ORDER_ID) is None
    assert kinds == [SET_CART_LINE, CHECKOUT_CART]


@pytest.mark.parametrize("key", [None, "", "k" * 65])
async def test_checkout_idempotency_key_missing_or_too_long_is_400(key: str | None) -> None:
    headers = ALICE if key is None else checkout_headers(key)
    async with running_gateway(reader_with()) as gw:
        response = await gw.client.post("/v1/carts/c1/checkout", json=CHECKOUT, headers=headers)
        assert response.status_code == 400
        assert "Idempotency-Key" in response.json()["detail"]
        assert gw.producer.sent == []


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ("body", "payment")),
        ({"payment": {"method": "pix", "token": "t"}}, ("body", "payment", "method")),
        ({"payment": {"method": "card", "token": ""}}, ("body", "payment", "token")),
        (CHECKOUT | {"items": []}, ("body", "items")),
    ],
)
async def test_bad_checkout_body_is_422(body: dict[str, Any], loc: tuple[Any, ...]) -> None:
    async with running_gateway(reader_with()) as gw:
        response = await gw.client.post(
            "/v1/carts/c1/checkout", json=body, headers=checkout_headers()
        )
        assert loc in error_locs(response)
        assert gw.producer.sent == []
