"""Authentication and authorization at the gateway, over real HTTP."""

from __future__ import annotations

import jwt
import pytest

from tests.integration.conftest import JWT_SECRET, Stack, auth, momentum
from tests.integration.shop import ADMIN, SELLER, Shop, unique_sku

pytestmark = pytest.mark.integration

ORDER = {"items": [{"sku": "X-1", "quantity": 1}], "payment": {"method": "card", "token": "tok_ok"}}


def expired_token() -> str:
    return jwt.encode({"sub": "late", "role": "customer", "exp": 1}, JWT_SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "not bearer"),
        ({"Authorization": "Bearer not-a-jwt"}, "malformed"),
        ({"Authorization": f"Bearer {expired_token()}"}, "expired"),
        (
            {
                "Authorization": "Bearer "
                + jwt.encode(
                    {"sub": "x", "role": "customer", "exp": 9999999999},
                    "another-secret-of-32-bytes-long!!",
                    algorithm="HS256",
                )
            },
            "bad signature",
        ),
    ],
)
def test_unauthenticated_is_401(shop: Shop, headers: dict[str, str], reason: str) -> None:
    for method, path in [("GET", "/v1/products/X-1"), ("POST", "/v1/orders")]:
        r = shop.http.request(
            method,
            path,
            headers={**headers, "Idempotency-Key": "k"},
            json=ORDER if method == "POST" else None,
        )
        assert r.status_code == 401, (reason, path, r.text)
        assert r.headers.get("www-authenticate", "").lower().startswith("bearer")


@pytest.mark.parametrize(
    ("role", "method", "path", "body"),
    [
        ("customer", "PUT", "/v1/products/X-1", {"name": "n", "price": "1.00", "currency": "BRL"}),
        ("customer", "POST", "/v1/inventory/X-1/restock", {"quantity": 1}),
        ("seller", "POST", "/v1/orders", ORDER),
    ],
)
def test_wrong_role_is_403(shop: Shop, role: str, method: str, path: str, body: dict) -> None:
    r = shop.http.request(
        method, path, json=body, headers={**auth("someone", role), "Idempotency-Key": "k"}
    )
    assert r.status_code == 403, r.text


def test_orders_are_private_to_their_customer(shop: Shop) -> None:
    sku = unique_sku("PRIVATE")
    shop.seed(sku, "2.50", 1)
    order_id = shop.order_id([(sku, 1)])
    shop.settled(order_id)

    someone_else = Shop(shop.http, customer="someone-else")
    other = shop.http.get(f"/v1/orders/{order_id}", headers=someone_else.headers)
    assert other.status_code == 404
    assert shop.http.get(f"/v1/orders/{order_id}", headers=ADMIN).status_code == 200
    # A cancel is a command: accepted, then refused by the saga as if no such order existed.
    cancel = shop.http.post(f"/v1/orders/{order_id}/cancel", headers=someone_else.headers)
    assert someone_else.refused(cancel) == "UNKNOWN_ORDER"
    assert shop.status(order_id) == "CONFIRMED"


def test_validation_and_size_limits(shop: Shop) -> None:
    bad = {"items": [{"sku": "A", "quantity": 0}], "payment": {"method": "card", "token": "t"}}
    r = shop.http.post("/v1/orders", json=bad, headers={**shop.headers, "Idempotency-Key": "v1"})
    assert r.status_code == 422
    assert "quantity" in r.text
    dupes = {
        "items": [{"sku": "A", "quantity": 1}, {"sku": "A", "quantity": 2}],
        "payment": {"method": "card", "token": "t"},
    }
    r = shop.http.post("/v1/orders", json=dupes, headers={**shop.headers, "Idempotency-Key": "v2"})
    assert r.status_code == 422
    huge = {"name": "x" * 200_000, "price": "1.00", "currency": "BRL"}
    assert shop.http.put("/v1/products/BIG", json=huge, headers=SELLER).status_code == 413
    assert shop.http.get("/v1/products/NOPE-404", headers=SELLER).status_code == 404
    assert shop.http.get("/health").status_code == 200
    assert shop.http.get("/ready").status_code == 200


def test_token_cli_prints_a_working_token(shop: Shop, stack: Stack) -> None:

    result = momentum(
        "token", "--sub", "cli-user", "--role", "customer", "--ttl", "60", env=stack.env
    )
    assert result.returncode == 0, result.stderr
    printed = result.stdout.strip()
    claims = jwt.decode(printed, JWT_SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["role"]) == ("cli-user", "customer")
    r = shop.http.get("/v1/products/ANY-1", headers={"Authorization": f"Bearer {printed}"})
    assert r.status_code == 404  # authenticated; the product just does not exist
