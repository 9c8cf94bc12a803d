"""The Postgres read model agrees with the live state after a mixed batch of orders."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import psycopg
import pytest

from tests.integration.conftest import Stack, momentum, wait_for
from tests.integration.shop import ADMIN, Shop, unique_sku

pytestmark = pytest.mark.integration


def rows(stack: Stack, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(stack.database_url) as conn:
        try:
            return conn.execute(sql, params).fetchall()
        except psycopg.errors.UndefinedTable:
            return []


def test_read_model_matches_settled_orders(stack: Stack, shop: Shop) -> None:
    skus = [unique_sku("RM") for _ in range(3)]
    for sku, price in zip(skus, ("10.00", "2.50", "7.25"), strict=True):
        shop.seed(sku, price, 6)
    tokens = ["tok_ok", "tok_ok", "tok_decline", "tok_ok", "tok_flaky"]
    plans = [
        ([(skus[i % 3], 1 + i % 2), (skus[(i + 1) % 3], 1)], tokens[i % len(tokens)])
        for i in range(15)
    ]
    with ThreadPoolExecutor(max_workers=5) as pool:
        order_ids = list(pool.map(lambda plan: shop.order_id(*plan), plans))

    admin = Shop(shop.http)
    admin.headers = ADMIN
    live = {order_id: admin.settled(order_id) for order_id in order_ids}
    assert {o["status"] for o in live.values()} <= {"CONFIRMED", "REJECTED"}
    assert any(o["status"] == "CONFIRMED" for o in live.values())
    assert any(o["status"] == "REJECTED" for o in live.values())

    expected = {oid: (o["status"], Decimal(o["total"])) for oid, o in live.items()}

    def orders_in_postgres() -> dict[str, tuple[str, Decimal]]:
        found = rows(
            stack, "select order_id, status, total from orders where order_id = any(%s)", order_ids
        )
        return {r[0]: (r[1], r[2]) for r in found}

    wait_for(lambda: orders_in_postgres() == expected, timeout=60)

    # Lines of confirmed orders, with the prices the orders snapshotted.
    # The sink writes each topic in batches of its own, so lines may trail their orders.
    confirmed = [oid for oid, o in live.items() if o["status"] == "CONFIRMED"]
    expected_lines = sorted(
        (oid, line["sku"], line["quantity"], Decimal(line["unit_price"]))
        for oid in confirmed
        for line in live[oid]["lines"]
    )

    def lines_in_postgres() -> list[tuple]:
        return sorted(
            rows(
                stack,
                "select order_id, sku, quantity, unit_price from order_lines"
                " where order_id = any(%s)",
                confirmed,
            )
        )

    try:
        wait_for(lambda: lines_in_postgres() == expected_lines, timeout=60)
    except AssertionError:
        assert lines_in_postgres() == expected_lines  # shows what differs

    # Payments and stock as the workers see them.
    wait_for(
        lambda: (
            {
                r[0]: r[1]
                for r in rows(
                    stack,
                    "select order_id, status from payments where order_id = any(%s)",
                    confirmed,
                )
            }
            == dict.fromkeys(confirmed, "CAPTURED")
        ),
        timeout=60,
    )
    for sku in skus:
        stock = shop.inventory(sku)
        assert stock is not None and stock["reserved"] == 0
        wait_for(
            lambda sku=sku, stock=stock: (
                rows(
                    stack, "select on_hand, reserved, available from inventory where sku = %s", sku
                )
                == [(stock["on_hand"], 0, stock["available"])]
            ),
            timeout=60,
        )

    # Per-minute sales add up to the confirmed revenue of these skus.
    revenue = sum((Decimal(live[oid]["total"]) for oid in confirmed), Decimal("0"))

    def sales_total() -> Decimal:
        found = rows(
            stack,
            "select coalesce(sum(revenue), 0) from sales_per_minute where sku = any(%s)",
            skus,
        )
        return Decimal(found[0][0]) if found else Decimal("-1")

    wait_for(lambda: sales_total() == revenue, timeout=60)

    # The sink has caught up, and says so.
    status = json.loads(
        momentum("status", "--json", "--state-dir", str(stack.state_dir), env=stack.env).stdout
    )
    lag = status["sink"]["lag"]
    assert "orders" in lag
    wait_for(
        lambda: all(
            v == 0
            for v in json.loads(
                momentum(
                    "status", "--json", "--state-dir", str(stack.state_dir), env=stack.env
                ).stdout
            )["sink"]["lag"].values()
        ),
        timeout=60,
    )
