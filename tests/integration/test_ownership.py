"""Ownership decided where the state lives (issue 7, section 3), over HTTP on the stack.

Each test replays a defect found by probing the API: a seller taking over another
seller's new sku, a restock before the product exists, an admin edit that moved a
product to the admin, another customer cancelling an order, and a reused
Idempotency-Key reaching a gateway that does not remember the first request.
Refusals are read back at `GET /v1/rejections`.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.integration.conftest import JWT_SECRET, Stack, auth, wait_for
from tests.integration.shop import ADMIN, Shop, unique_sku

pytestmark = pytest.mark.integration

SELLER_A = auth("seller-a", "seller")
SELLER_B = auth("seller-b", "seller")


def product(shop: Shop, sku: str) -> dict[str, Any] | None:
    r = shop.http.get(f"/v1/products/{sku}", headers=SELLER_A)
    return dict(r.json()) if r.status_code == 200 else None


def put_product(shop: Shop, sku: str, price: str, headers: dict[str, str], **extra: Any) -> Any:
    body = {"name": f"Product {sku}", "price": price, "currency": "BRL", **extra}
    return shop.http.put(f"/v1/products/{sku}", json=body, headers=headers)


def restock(shop: Shop, sku: str, quantity: int, headers: dict[str, str]) -> Any:
    return shop.http.post(
        f"/v1/inventory/{sku}/restock", json={"quantity": quantity}, headers=headers
    )


def test_a_seller_cannot_take_over_a_sku_another_seller_just_created(shop: Shop) -> None:
    """Seller A creates race-X at 10.00, seller B's PUT right after used to win (0.01)."""
    sku = unique_sku("race-X")
    created = put_product(shop, sku, "10.00", SELLER_A)
    taken = put_product(shop, sku, "0.01", SELLER_B)
    assert (created.status_code, taken.status_code) == (202, 202), taken.text

    # A's restock follows both upserts on the sku's partition: once it shows, both
    # were applied or refused. Before the fix A got 403 here (B owned the sku).
    topped_up = restock(shop, sku, 5, SELLER_A)
    assert topped_up.status_code == 202, topped_up.text
    wait_for(lambda: (shop.inventory(sku) or {}).get("on_hand") == 5)
    now = product(shop, sku)
    assert now is not None
    assert (now["seller_id"], now["price"]) == ("seller-a", "10.00")
    assert shop.refused(taken, SELLER_B) == "SKU_OWNED_BY_ANOTHER_SELLER"


def test_a_restock_before_the_product_exists_is_refused(shop: Shop) -> None:
    """B restocked a sku before A created it; the units counted for A's product."""
    sku = unique_sku("EARLY")
    early = restock(shop, sku, 7, SELLER_B)
    assert early.status_code == 202

    assert put_product(shop, sku, "4.00", SELLER_A).status_code == 202
    assert restock(shop, sku, 3, SELLER_A).status_code == 202
    # Only A's units (before the fix: 10, B's 7 included).
    wait_for(lambda: (shop.inventory(sku) or {}).get("on_hand") == 3)
    assert shop.refused(early, SELLER_B) == "UNKNOWN_SKU"

    # Now the product exists, but it is A's: B still may not restock it.
    late = restock(shop, sku, 7, SELLER_B)
    assert shop.refused(late, SELLER_B) == "SKU_OWNED_BY_ANOTHER_SELLER"
    assert restock(shop, sku, 1, SELLER_A).status_code == 202
    wait_for(lambda: (shop.inventory(sku) or {}).get("on_hand") == 4)


def test_an_admin_edit_keeps_the_owner_and_only_an_explicit_transfer_moves_it(
    shop: Shop,
) -> None:
    sku = unique_sku("ADMIN-EDIT")
    assert put_product(shop, sku, "5.00", SELLER_A).status_code == 202
    wait_for(lambda: product(shop, sku))

    assert put_product(shop, sku, "6.00", ADMIN).status_code == 202
    edited = wait_for(lambda: (p := product(shop, sku)) and p["price"] == "6.00" and p)
    # Used to become the admin's product, silently.
    assert edited["seller_id"] == "seller-a"

    moved = put_product(shop, sku, "6.50", ADMIN, seller_id="seller-b")
    assert moved.status_code == 202, moved.text
    transferred = wait_for(lambda: (p := product(shop, sku)) and p["price"] == "6.50" and p)
    assert transferred["seller_id"] == "seller-b"
    # The old owner is now refused, the new one is not.
    stale = put_product(shop, sku, "1.00", SELLER_A)
    assert shop.refused(stale, SELLER_A) == "SKU_OWNED_BY_ANOTHER_SELLER"
    assert put_product(shop, sku, "7.00", SELLER_B).status_code == 202
    wait_for(lambda: (p := product(shop, sku)) and p["price"] == "7.00")


def test_another_customer_cannot_cancel_an_order_even_through_a_cart_id_taken_first(
    shop: Shop,
) -> None:
    """B checks out cart id cartX before it exists, A fills and checks out cartX, B cancels.

    B's cancels used to get 202 now and then and cancel A's order.
    """
    sku = unique_sku("CARTX")
    shop.seed(sku, "3.00", 5)
    alice = Shop(shop.http, customer=f"alice-{uuid.uuid4().hex[:6]}")
    bob = Shop(shop.http, customer=f"bob-{uuid.uuid4().hex[:6]}")
    cart = f"cartX-{uuid.uuid4().hex[:8]}"
    checkout = {"payment": {"method": "card", "token": "tok_ok"}}

    squat = bob.http.post(
        f"/v1/carts/{cart}/checkout", json=checkout, headers={**bob.headers, "Idempotency-Key": "b"}
    )
    assert bob.refused(squat) == "CART_EMPTY"

    filled = alice.http.put(
        f"/v1/carts/{cart}/items/{sku}", json={"quantity": 2}, headers=alice.headers
    )
    assert filled.status_code == 202
    placed = alice.http.post(
        f"/v1/carts/{cart}/checkout",
        json=checkout,
        headers={**alice.headers, "Idempotency-Key": "a"},
    )
    assert placed.status_code == 202, placed.text
    order_id = placed.json()["order_id"]
    assert alice.settled(order_id)["status"] == "CONFIRMED"

    cancels = [
        bob.http.post(f"/v1/orders/{order_id}/cancel", headers=bob.headers) for _ in range(5)
    ]
    # Accepted as commands; the saga, which holds the order, refuses each one.
    assert [bob.refused(r) for r in cancels] == ["UNKNOWN_ORDER"] * 5
    assert alice.status(order_id) == "CONFIRMED"
    assert bob.http.get(f"/v1/orders/{order_id}", headers=bob.headers).status_code == 404
    # Bob's commands on Alice's cart are refused too.
    meddle = bob.http.put(
        f"/v1/carts/{cart}/items/{sku}", json={"quantity": 1}, headers=bob.headers
    )
    assert bob.refused(meddle) == "CART_OF_ANOTHER_CUSTOMER"

    # Alice may cancel her own order.
    mine = alice.http.post(f"/v1/orders/{order_id}/cancel", headers=alice.headers)
    assert mine.status_code == 202
    assert wait_for(lambda: alice.status(order_id) == "CANCELLED")
    shop.wait_stock(sku, on_hand=5, reserved=0)


def place_through_another_gateway(stack: Stack, customer: str, key: str, body: dict) -> Any:
    """POST /v1/orders through a second gateway process's app, which never saw the key."""
    from core.settings import Settings
    from gateway.main import create_app

    settings = Settings(
        KAFKA_BOOTSTRAP_SERVERS=stack.bootstrap,
        SCHEMA_REGISTRY_URL=stack.registry_url,
        WORKER_URL=stack.endpoints["worker_url"],
        MOMENTUM_JWT_SECRET=JWT_SECRET,
    )

    async def post() -> httpx.Response:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://other") as client:
                return await client.post(
                    "/v1/orders",
                    json=body,
                    headers={**auth(customer, "customer"), "Idempotency-Key": key},
                )

    return asyncio.run(post())


def test_a_reused_key_with_another_body_never_makes_a_second_order(
    stack: Stack, shop: Shop
) -> None:
    sku = unique_sku("REUSE")
    shop.seed(sku, "2.00", 10)
    key = f"reuse-{uuid.uuid4().hex[:8]}"
    first = shop.place([(sku, 2)], key=key)
    assert first.status_code == 202
    order_id = first.json()["order_id"]
    assert shop.settled(order_id)["status"] == "CONFIRMED"

    # This gateway remembers the first request: 409 at once.
    assert shop.place([(sku, 3)], key=key).status_code == 409

    # A gateway that does not (another replica, or this one restarted) asks no worker:
    # the command goes to the saga, which keeps the first request and refuses this one.
    body = {
        "items": [{"sku": sku, "quantity": 3}],
        "payment": {"method": "card", "token": "tok_ok"},
    }
    other = place_through_another_gateway(stack, shop.customer, key, body)
    assert other.status_code == 202, other.text
    assert other.json()["order_id"] == order_id
    assert shop.refused(other) == "IDEMPOTENCY_KEY_REUSED"

    order = shop.settled(order_id)
    assert [(line["sku"], line["quantity"]) for line in order["lines"]] == [(sku, 2)]
    shop.wait_stock(sku, on_hand=8, reserved=0)
