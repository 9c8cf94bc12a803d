"""Orders routes: idempotent placing without a worker, ownership, waiting reads and cancel."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Any

import pytest

from core.topics import ORDER_COMMANDS
from gateway.commands import ORDER_ID_NAMESPACE, order_id_for
from gateway.routes import orders as orders_routes
from schemas.messages import CANCEL_ORDER, PLACE_ORDER
from tests.support.gateway import (
    FakeReader,
    bearer,
    error_locs,
    running_gateway,
    stored_order,
)

ALICE = bearer("alice", "customer")
BOB = bearer("bob", "customer")
ADMIN = bearer("root", "admin")
ORDER = {
    "items": [{"sku": "tee-m", "quantity": 2}, {"sku": "mug", "quantity": 1}],
    "payment": {"method": "card", "token": "tok_visa"},
}


def place_headers(key: str = "key-1", auth: dict[str, str] = ALICE) -> dict[str, str]:
    return auth | {"Idempotency-Key": key}


def canonical_hash(body: dict[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# Placing.


async def test_place_order_sends_place_order_keyed_by_deterministic_id() -> None:
    expected_id = str(uuid.uuid5(ORDER_ID_NAMESPACE, '["alice","key-1"]'))
    async with running_gateway() as gw:
        response = await gw.client.post("/v1/orders", json=ORDER, headers=place_headers())
        assert response.status_code == 202, response.text
        [(key, command)] = gw.commands(ORDER_COMMANDS)
        assert response.json() == {
            "order_id": expected_id,
            "status": "PENDING",
            "command_id": command["command_id"],
        }
        assert response.headers["Location"] == f"/v1/orders/{expected_id}"
        assert gw.reader.calls == []
    assert key == expected_id == command["order_id"]
    uuid.UUID(command["command_id"])
    assert command["payload"] == (
        PLACE_ORDER,
        {
            "customer_id": "alice",
            "lines": [{"sku": "tee-m", "quantity": 2}, {"sku": "mug", "quantity": 1}],
            "payment": {"method": "card", "token": "tok_visa"},
            "request_hash": canonical_hash(ORDER),
        },
    )


async def test_order_id_depends_on_customer_and_key() -> None:
    ids = {order_id_for(c, k) for c in ("alice", "bob") for k in ("k1", "k2")}
    assert len(ids) == 4
    assert order_id_for("alice", "k1") == order_id_for("alice", "k1")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("aliceR:k", "1"), ("aliceR", "k:1")),  # the collision issue 7 found
        (('a"', "b"), ("a", '"b')),
        (("a,", "b"), ("a", ",b")),
        (("", "a:b"), ("a", "b")),
    ],
)
def test_order_ids_of_different_customer_key_pairs_never_collide(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    """uuid5(sub + ":" + key) named one order for two customers; the encoding is unambiguous."""
    assert order_id_for(*first) != order_id_for(*second)


async def test_same_key_same_body_is_sent_again_without_asking_a_worker() -> None:
    # The saga keeps the first PlaceOrder per order id: a retry changes nothing there.
    async with running_gateway() as gw:
        first = await gw.client.post("/v1/orders", json=ORDER, headers=place_headers())
        retry = await gw.client.post("/v1/orders", json=ORDER, headers=place_headers())
        assert first.status_code == retry.status_code == 202
        assert first.json()["order_id"] == retry.json()["order_id"]
        assert first.headers["Location"] == retry.headers["Location"]
        assert len(gw.commands(ORDER_COMMANDS)) == 2
        assert gw.reader.calls == []


async def test_same_key_other_body_this_process_does_not_remember_goes_to_the_saga() -> None:
    """Another gateway (or this one, restarted) took the first request: no worker is asked.

    The command is sent with its own request hash; the saga, holding the first
    request's hash, refuses it (IDEMPOTENCY_KEY_REUSED) and keeps the first order.
    """
    other = ORDER | {"items": [{"sku": "tee-m", "quantity": 3}]}
    async with running_gateway() as first_gateway:
        await first_gateway.client.post("/v1/orders", json=ORDER, headers=place_headers())
    async with running_gateway() as gw:
        response = await gw.client.post("/v1/orders", json=other, headers=place_headers())
        assert response.status_code == 202, response.text
        [(_, command)] = gw.commands(ORDER_COMMANDS)
        assert gw.reader.calls == []
    assert response.json()["order_id"] == order_id_for("alice", "key-1")
    assert command["payload"][1]["request_hash"] == canonical_hash(other)


async def test_same_key_other_body_just_sent_is_409_before_the_worker_knows() -> None:
    other = ORDER | {"items": [{"sku": "tee-m", "quantity": 3}]}
    async with running_gateway() as gw:
        first = await gw.client.post("/v1/orders", json=ORDER, headers=place_headers())
        second = await gw.client.post("/v1/orders", json=other, headers=place_headers())
        retry = await gw.client.post("/v1/orders", json=ORDER, headers=place_headers())
        assert (first.status_code, second.status_code, retry.status_code) == (202, 409, 202)
        assert retry.json()["order_id"] == first.json()["order_id"]
        # The retry is sent again (the saga ignores a second PlaceOrder), the conflict never.
        hashes = {c["payload"][1]["request_hash"] for _, c in gw.commands(ORDER_COMMANDS)}
        assert hashes == {canonical_hash(ORDER)}


async def test_concurrent_requests_with_one_key_and_two_bodies_one_wins() -> None:
    other = ORDER | {"items": [{"sku": "mug", "quantity": 9}]}
    async with running_gateway() as gw:
        responses = await asyncio.gather(
            gw.client.post("/v1/orders", json=ORDER, headers=place_headers()),
            gw.client.post("/v1/orders", json=other, headers=place_headers()),
        )
        assert sorted(r.status_code for r in responses) == [202, 409]
        assert len(gw.producer.sent) == 1


async def test_same_key_for_two_customers_are_two_orders() -> None:
    async with running_gateway() as gw:
        a = await gw.client.post("/v1/orders", json=ORDER, headers=place_headers())
        b = await gw.client.post("/v1/orders", json=ORDER, headers=place_headers(auth=BOB))
    assert a.status_code == b.status_code == 202
    assert a.json()["order_id"] != b.json()["order_id"]


@pytest.mark.parametrize("key", [None, "", "k" * 65])
async def test_idempotency_key_missing_or_too_long_is_400(key: str | None) -> None:
    headers = ALICE if key is None else place_headers(key)
    async with running_gateway() as gw:
        response = await gw.client.post("/v1/orders", json=ORDER, headers=headers)
        assert response.status_code == 400
        assert "Idempotency-Key" in response.json()["detail"]
        assert gw.producer.sent == []


async def test_idempotency_key_of_64_characters_is_fine() -> None:
    async with running_gateway() as gw:
        response = await gw.client.post("/v1/orders", json=ORDER, headers=place_headers("k" * 64))
    assert response.status_code == 202


def items(n: int, quantity: int = 1) -> list[dict[str, Any]]:
    return [{"sku": f"sku-{i}", "quantity": quantity} for i in range(n)]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (ORDER | {"items": []}, ("body", "items")),
        (ORDER | {"items": items(51)}, ("body", "items")),
        (ORDER | {"items": items(1, quantity=0)}, ("body", "items", 0, "quantity")),
        (ORDER | {"items": items(1, quantity=1001)}, ("body", "items", 0, "quantity")),
        (
            ORDER | {"items": [{"sku": "a", "quantity": 1}, {"sku": "a", "quantity": 2}]},
            ("body", "items"),
        ),
        (ORDER | {"items": [{"sku": "bad sku", "quantity": 1}]}, ("body", "items", 0, "sku")),
        (ORDER | {"payment": {"method": "pix", "token": "t"}}, ("body", "payment", "method")),
        (ORDER | {"payment": {"method": "card"}}, ("body", "payment", "token")),
        ({"items": items(1)}, ("body", "payment")),
    ],
)
async def test_invalid_order_is_422_naming_the_field(
    body: dict[str, Any], loc: tuple[Any, ...]
) -> None:
    async with running_gateway() as gw:
        response = await gw.client.post("/v1/orders", json=body, headers=place_headers())
        assert loc in error_locs(response)
        assert gw.producer.sent == []


async def test_duplicate_skus_are_named_in_the_reason() -> None:
    body = ORDER | {"items": [{"sku": "a", "quantity": 1}, {"sku": "a", "quantity": 2}]}
    async with running_gateway() as gw:
        response = await gw.client.post("/v1/orders", json=body, headers=place_headers())
    [error] = response.json()["detail"]
    assert "duplicate skus: a" in error["msg"]


async def test_fifty_lines_and_quantity_1000_are_accepted() -> None:
    async with running_gateway() as gw:
        response = await gw.client.post(
            "/v1/orders", json=ORDER | {"items": items(50, quantity=1000)}, headers=place_headers()
        )
    assert response.status_code == 202, response.text


async def test_worker_down_while_placing_is_202_and_the_command_is_sent() -> None:
    """Issue 7: placements answered 503 while the worker restarted. Kafka is the buffer."""
    async with running_gateway(FakeReader(down=True)) as gw:
        response = await gw.client.post("/v1/orders", json=ORDER, headers=place_headers())
        assert response.status_code == 202, response.text
        assert len(gw.commands(ORDER_COMMANDS)) == 1
        assert gw.reader.calls == []


async def test_kafka_down_while_placing_is_503_with_retry_after() -> None:
    async with running_gateway() as gw:
        gw.producer.down = True
        response = await gw.client.post("/v1/orders", json=ORDER, headers=place_headers())
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"


# Reading.


async def test_get_order_owner_and_admin_see_it_others_do_not() -> None:
    order_id = order_id_for("alice", "key-1")
    reader = FakeReader(
        orders={order_id: stored_order(order_id, status="CONFIRMED", request_hash="h")}
    )
    async with running_gateway(reader) as gw:
        url = f"/v1/orders/{order_id}"
        owner = await gw.client.get(url, headers=ALICE)
        admin = await gw.client.get(url, headers=ADMIN)
        other = await gw.client.get(url, headers=BOB)
        seller = await gw.client.get(url, headers=bearer("sam", "seller"))
    assert (owner.status_code, admin.status_code, other.status_code, seller.status_code) == (
        200,
        200,
        404,
        404,
    )
    assert owner.json() == admin.json()
    body = owner.json()
    assert "request_hash" not in body
    assert body["order_id"] == order_id
    assert body["status"] == "CONFIRMED"
    assert body["lines"] == [{"sku": "tee-m", "quantity": 2, "unit_price": "10.00"}]
    assert body["total"] == "20.00"
    assert set(body) == {
        "order_id", "customer_id", "status", "reason", "lines", "total", "currency",
        "created_at", "updated_at",
    }  # fmt: skip


async def test_unknown_order_is_404() -> None:
    async with running_gateway() as gw:
        response = await gw.client.get(f"/v1/orders/{uuid.uuid4()}", headers=ALICE)
        waited = await gw.client.get(f"/v1/orders/{uuid.uuid4()}?wait=5", headers=ALICE)
    assert response.status_code == waited.status_code == 404


async def test_wait_returns_as_soon_as_the_order_settles() -> None:
    order_id = order_id_for("alice", "key-1")

    def script(poll: int) -> dict[str, Any]:
        return stored_order(order_id, status="CONFIRMED" if poll >= 4 else "RESERVED")

    reader = FakeReader(orders={order_id: script})
    async with running_gateway(reader) as gw:
        response = await gw.client.get(f"/v1/orders/{order_id}?wait=30", headers=ALICE)
    assert response.status_code == 200
    assert response.json()["status"] == "CONFIRMED"
    # Settled on the 4th read, and not read again after (no waiting out the 30 s).
    assert reader.order_reads == 4


async def test_wait_gives_the_current_state_when_time_is_up() -> None:
    order_id = order_id_for("alice", "key-1")
    reader = FakeReader(orders={order_id: stored_order(order_id, status="RESERVED")})
    async with running_gateway(reader) as gw:
        response = await gw.client.get(f"/v1/orders/{order_id}?wait=0.2", headers=ALICE)
    assert response.status_code == 200
    assert response.json()["status"] == "RESERVED"
    assert reader.order_reads >= 2


async def test_wait_keeps_waiting_for_an_order_just_accepted() -> None:
    order_id = order_id_for("alice", "key-1")

    def script(poll: int) -> dict[str, Any] | None:
        # The worker knows the order from the sixth read on: the GET without wait
        # gives up at once, the waiting GETs keep asking until it appears.
        if poll < 6:
            return None
        return stored_order(order_id, status="REJECTED", reason="OUT_OF_STOCK")

    reader = FakeReader(orders={order_id: script})
    async with running_gateway(reader) as gw:
        placed = await gw.client.post("/v1/orders", json=ORDER, headers=place_headers())
        no_wait = await gw.client.get(placed.headers["Location"], headers=ALICE)
        other_customer = await gw.client.get(placed.headers["Location"] + "?wait=5", headers=BOB)
        waited = await gw.client.get(placed.headers["Location"] + "?wait=5", headers=ALICE)
    assert no_wait.status_code == 404
    assert other_customer.status_code == 404
    assert waited.status_code == 200
    assert waited.json()["status"] == "REJECTED"
    assert waited.json()["reason"] == "OUT_OF_STOCK"
    assert reader.order_reads >= 6


@pytest.mark.parametrize("wait", ["31", "-1", "soon"])
async def test_bad_wait_is_422(wait: str) -> None:
    async with running_gateway() as gw:
        response = await gw.client.get(f"/v1/orders/{uuid.uuid4()}?wait={wait}", headers=ALICE)
        assert ("query", "wait") in error_locs(response)


async def test_order_id_must_be_a_uuid() -> None:
    async with running_gateway() as gw:
        response = await gw.client.get("/v1/orders/not-an-id", headers=ALICE)
        assert ("path", "order_id") in error_locs(response)


async def test_poll_interval_is_short() -> None:
    assert 0.05 <= orders_routes.POLL_INTERVAL_SECONDS <= 0.1


# Cancelling.


@pytest.mark.parametrize(
    ("auth", "requested_by", "role"),
    [(ALICE, "alice", "CUSTOMER"), (BOB, "bob", "CUSTOMER"), (ADMIN, "root", "ADMIN")],
)
async def test_cancel_sends_cancel_order_with_who_asks_and_asks_no_worker(
    auth: dict[str, str], requested_by: str, role: str
) -> None:
    """The saga decides who may cancel (issue 7): the gateway only says who asks."""
    order_id = order_id_for("alice", "key-1")
    async with running_gateway(FakeReader(down=True)) as gw:
        response = await gw.client.post(f"/v1/orders/{order_id}/cancel", headers=auth)
        assert response.status_code == 202, response.text
        [(key, command)] = gw.commands(ORDER_COMMANDS)
        assert gw.reader.calls == []
    assert response.json() == {
        "order_id": order_id,
        "accepted": True,
        "command_id": command["command_id"],
    }
    assert key == order_id == command["order_id"]
    assert command["payload"] == (
        CANCEL_ORDER,
        {"requested_by": requested_by, "role": role},
    )


async def test_cancel_needs_a_customer_or_admin_token() -> None:
    order_id = order_id_for("alice", "key-1")
    async with running_gateway() as gw:
        seller = await gw.client.post(
            f"/v1/orders/{order_id}/cancel", headers=bearer("sam", "seller")
        )
        anonymous = await gw.client.post(f"/v1/orders/{order_id}/cancel")
        assert (seller.status_code, anonymous.status_code) == (403, 401)
        assert gw.producer.sent == []


async def test_cancel_right_after_placing_follows_the_place_order() -> None:
    async with running_gateway() as gw:
        placed = await gw.client.post("/v1/orders", json=ORDER, headers=place_headers())
        order_id = placed.json()["order_id"]
        cancel = await gw.client.post(f"/v1/orders/{order_id}/cancel", headers=ALICE)
        assert cancel.status_code == 202
        kinds = [command["payload"][0] for _, command in gw.commands(ORDER_COMMANDS)]
    # Same key, same partition: the saga sees the PlaceOrder first.
    assert kinds == [PLACE_ORDER, CANCEL_ORDER]
