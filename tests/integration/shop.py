"""A shop front-end's view of the stack, for the integration tests: HTTP calls only."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.integration.conftest import auth, wait_for

SELLER = auth("seller-tests", "seller")
ADMIN = auth("admin-tests", "admin")


def unique_sku(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Shop:
    def __init__(self, gateway: httpx.Client, customer: str = "customer-tests") -> None:
        self.http = gateway
        self.customer = customer
        self.headers = auth(customer, "customer")

    def seed(self, sku: str, price: str, stock: int, currency: str = "BRL") -> None:
        body = {"name": f"Product {sku}", "price": price, "currency": currency}
        r = self.http.put(f"/v1/products/{sku}", json=body, headers=SELLER)
        assert r.status_code == 202, r.text
        if stock:
            r = self.http.post(
                f"/v1/inventory/{sku}/restock", json={"quantity": stock}, headers=SELLER
            )
            assert r.status_code == 202, r.text
        wait_for(lambda: self.http.get(f"/v1/products/{sku}", headers=SELLER).status_code == 200)
        wait_for(lambda: (self.inventory(sku) or {}).get("on_hand") == stock)

    def inventory(self, sku: str) -> dict[str, Any] | None:
        r = self.http.get(f"/v1/inventory/{sku}", headers=SELLER)
        return r.json() if r.status_code == 200 else None

    def place(
        self, lines: list[tuple[str, int]], token: str = "tok_ok", key: str | None = None
    ) -> httpx.Response:
        return self.http.post(
            "/v1/orders",
            json={
                "items": [{"sku": s, "quantity": q} for s, q in lines],
                "payment": {"method": "card", "token": token},
            },
            headers={**self.headers, "Idempotency-Key": key or str(uuid.uuid4())},
        )

    def order_id(self, lines: list[tuple[str, int]], token: str = "tok_ok") -> str:
        r = self.place(lines, token)
        assert r.status_code == 202, r.text
        return str(r.json()["order_id"])

    def settled(self, order_id: str, wait: int = 30) -> dict[str, Any]:
        r = self.http.get(f"/v1/orders/{order_id}", params={"wait": wait}, headers=self.headers)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def status(self, order_id: str) -> str | None:
        """The order's status now, or None while the workers do not know it yet."""
        r = self.http.get(f"/v1/orders/{order_id}", headers=self.headers)
        return str(r.json()["status"]) if r.status_code == 200 else None

    def rejection(self, command_id: str, headers: dict[str, str] | None = None) -> dict | None:
        """The rejection of one of our commands, once the agent has refused it."""
        r = self.http.get(
            "/v1/rejections", params={"command_id": command_id}, headers=headers or self.headers
        )
        assert r.status_code == 200, r.text
        found = r.json()["rejections"]
        return dict(found[0]) if found else None

    def refused(self, response: httpx.Response, headers: dict[str, str] | None = None) -> str:
        """Wait until the command answered by `response` (a 202) is refused; its reason."""
        assert response.status_code == 202, response.text
        command_id = response.json()["command_id"]
        return str(wait_for(lambda: self.rejection(command_id, headers))["reason"])

    def wait_stock(self, sku: str, on_hand: int, reserved: int) -> dict[str, Any]:
        return dict(
            wait_for(
                lambda: (
                    (s := self.inventory(sku))
                    and s["on_hand"] == on_hand
                    and s["reserved"] == reserved
                    and s
                )
            )
        )
