"""`momentum up --demo`: seed a small catalog, place a few orders, show what happened.

Everything goes through the public HTTP API, the way a shop front-end would
use it, and the read model is then read back from Postgres.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from core.settings import get_settings
from gateway.auth import issue_token, require_secret
from momentum.progress import working

CATALOG = [
    # sku, name, price, stock
    ("MUG-001", "Enamel mug", "39.90", 25),
    ("TEE-042", "Organic cotton tee", "79.00", 10),
    ("LAMP-7", "Desk lamp", "149.50", 1),
]

ORDERS = [
    # what the customer asks for, and the card token that decides the payment
    ("two mugs and a tee", [("MUG-001", 2), ("TEE-042", 1)], "tok_ok"),
    ("the last lamp", [("LAMP-7", 1)], "tok_ok"),
    ("another lamp (sold out)", [("LAMP-7", 1)], "tok_ok"),
    ("a tee, card declined", [("TEE-042", 1)], "tok_decline"),
    ("a mug, provider flaky", [("MUG-001", 1)], "tok_flaky"),
    ("an unknown sku", [("GHOST-1", 1)], "tok_ok"),
]


def run_demo(endpoints: dict[str, str], say: Callable[[str], None]) -> list[dict[str, Any]]:
    # The launcher put its stack's secret in this process's settings.
    secret = require_secret(get_settings().jwt_secret)
    seller = {"Authorization": f"Bearer {issue_token('demo-seller', 'seller', 3600, secret)}"}
    customer = {"Authorization": f"Bearer {issue_token('demo-customer', 'customer', 3600, secret)}"}
    results: list[dict[str, Any]] = []
    with httpx.Client(base_url=endpoints["gateway_url"], timeout=40.0) as http:
        say("\nDemo: seeding the catalog")
        for sku, name, price, stock in CATALOG:
            http.put(
                f"/v1/products/{sku}",
                json={"name": name, "price": price, "currency": "BRL"},
                headers=seller,
            ).raise_for_status()
            http.post(
                f"/v1/inventory/{sku}/restock", json={"quantity": stock}, headers=seller
            ).raise_for_status()
            say(f"  {sku:<8} {name:<20} BRL {price:>7}  stock {stock}")
        with working("waiting for the workers to apply the restocks"):
            wait_until_stocked(http, seller)

        say("\nDemo: placing orders")
        for number, (label, lines, card) in enumerate(ORDERS, 1):
            response = http.post(
                "/v1/orders",
                json={
                    "items": [{"sku": s, "quantity": q} for s, q in lines],
                    "payment": {"method": "card", "token": card},
                },
                headers={**customer, "Idempotency-Key": str(uuid.uuid4())},
            )
            response.raise_for_status()
            order_id = response.json()["order_id"]
            # One at a time, so "the last lamp" really is placed before "another lamp".
            with working(f"order {number}/{len(ORDERS)}: {label}, waiting for the saga"):
                order = http.get(
                    f"/v1/orders/{order_id}", params={"wait": 20}, headers=customer
                ).json()
            results.append(order)
            say(
                f"  {label:<26} -> {order['status']:<9} {order['reason'] or '':<20} "
                f"total {order['currency'] or '':>3} {order['total']:>7}"
            )

        say("\nDemo: stock after the orders")
        for sku, *_ in CATALOG:
            stock = http.get(f"/v1/inventory/{sku}", headers=seller).json()
            say(
                f"  {sku:<8} on hand {stock['on_hand']:>3}  reserved {stock['reserved']:>3}  "
                f"available {stock['available']:>3}"
            )

    say("\nDemo: the Postgres read model (table orders)")
    with working("waiting for the sink to write the orders to Postgres"):
        rows = read_model_rows(endpoints["database_url"], [o["order_id"] for o in results])
    for row in rows:
        say(f"  {row[0]}  {row[1]:<9} {row[2] or '':<20} {row[3]}")
    return results


def wait_until_stocked(http: httpx.Client, headers: dict[str, str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    for sku, _, _, stock in CATALOG:
        while time.monotonic() < deadline:
            response = http.get(f"/v1/inventory/{sku}", headers=headers)
            if response.status_code == 200 and response.json()["on_hand"] >= stock:
                break
            time.sleep(0.2)


def read_model_rows(database_url: str, order_ids: list[str], timeout: float = 20.0) -> list[Any]:
    """Rows of the orders table for these orders, once the sink has written them all."""
    import psycopg

    deadline = time.monotonic() + timeout
    rows: list[Any] = []
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(database_url) as conn:
                rows = conn.execute(
                    "select order_id, status, reason, total from orders "
                    "where order_id = any(%s) order by created_at",
                    (order_ids,),
                ).fetchall()
        except psycopg.Error:
            rows = []
        if len(rows) == len(order_ids):
            break
        time.sleep(0.5)
    return rows


def next_steps(endpoints: dict[str, str], state_dir: str) -> list[str]:
    """What a newcomer can try next against this stack, as commands to copy."""
    gateway = endpoints["gateway_url"]
    return [
        "\nNext steps (in another shell, from this checkout):",
        "  . .venv/bin/activate                      # puts `momentum` on the PATH",
        f"  TOKEN=$(momentum token --sub me --role customer --state-dir {state_dir})",
        f'  curl -s -X POST {gateway}/v1/orders -H "Authorization: Bearer $TOKEN" \\',
        "       -H 'Content-Type: application/json' -H \"Idempotency-Key: $(date +%s%N)\" \\",
        '       -d \'{"items": [{"sku": "MUG-001", "quantity": 1}], '
        '"payment": {"method": "card", "token": "tok_ok"}}\'',
        f"  psql {endpoints['database_url']} -c 'select order_id, status, total from orders'",
        f"  momentum ui --state-dir {state_dir}                # topics, groups, lag",
        f"  momentum ui orders --state-dir {state_dir}         # the orders topic, decoded",
        f"  momentum status --state-dir {state_dir}",
        f"  API docs: {gateway}/docs    logs: {state_dir}/run/logs/<part>.log",
    ]
