"""The order saga over HTTP against the embedded stack: stock, payments, expiry, cancel."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest

from tests.integration.conftest import BREAKER_RESET_SECONDS, RESERVATION_TTL_SECONDS, wait_for
from tests.integration.shop import ADMIN, Shop, unique_sku

pytestmark = pytest.mark.integration


def payment(provider: httpx.Client, order_id: str) -> dict:
    r = provider.get(f"/v1/payments/{order_id}")
    return {"status": None, **r.json()} if r.status_code in (200, 404) else {}


def test_scarce_sku_is_never_oversold(shop: Shop) -> None:
    sku = unique_sku("SCARCE")
    shop.seed(sku, "9.90", 20)

    def order_one(_: int) -> str:
        # Each single-unit order from its own customer, all at once.
        customer = Shop(shop.http, customer=f"buyer-{_}")
        r = customer.place([(sku, 1)])
        assert r.status_code == 202, r.text
        return str(r.json()["order_id"])

    with ThreadPoolExecutor(max_workers=20) as pool:
        order_ids = list(pool.map(order_one, range(60)))
    assert len(set(order_ids)) == 60

    admin = Shop(shop.http)
    admin.headers = ADMIN
    outcomes: Counter[tuple[str, str | None]] = Counter()
    for order_id in order_ids:
        order = admin.settled(order_id)
        outcomes[(order["status"], order["reason"])] += 1
    assert outcomes == {("CONFIRMED", None): 20, ("REJECTED", "OUT_OF_STOCK"): 40}
    assert shop.wait_stock(sku, on_hand=0, reserved=0)["available"] == 0


def test_one_line_out_of_stock_rejects_and_releases_the_others(shop: Shop) -> None:
    a, b, c = unique_sku("A"), unique_sku("B"), unique_sku("C")
    shop.seed(a, "1.00", 5)
    shop.seed(b, "2.00", 5)
    shop.seed(c, "3.00", 1)

    order = shop.settled(shop.order_id([(a, 2), (b, 3), (c, 2)]))

    assert (order["status"], order["reason"]) == ("REJECTED", "OUT_OF_STOCK")
    for sku in (a, b):
        shop.wait_stock(sku, on_hand=5, reserved=0)
    shop.wait_stock(c, on_hand=1, reserved=0)


def test_unknown_sku_rejects(shop: Shop) -> None:
    order = shop.settled(shop.order_id([(unique_sku("GHOST"), 1)]))
    assert (order["status"], order["reason"]) == ("REJECTED", "UNKNOWN_SKU")


@pytest.mark.parametrize(
    ("token", "status", "reason", "authorize_calls", "final_payment"),
    [
        ("tok_ok", "CONFIRMED", None, 1, "CAPTURED"),
        ("tok_decline", "REJECTED", "PAYMENT_DECLINED", 1, "DECLINED"),
        # 503 twice, then approved: three calls, one authorization.
        ("tok_flaky", "CONFIRMED", None, 3, "CAPTURED"),
        # Answered after the client's timeout: the retry gets the recorded result.
        ("tok_slow", "CONFIRMED", None, 2, "CAPTURED"),
    ],
)
def test_payment_token_paths(
    shop: Shop,
    provider: httpx.Client,
    token: str,
    status: str,
    reason: str | None,
    authorize_calls: int,
    final_payment: str,
) -> None:
    sku = unique_sku(f"PAY-{token}")
    shop.seed(sku, "10.00", 3)
    order_id = shop.order_id([(sku, 2)], token=token)

    order = shop.settled(order_id)
    assert (order["status"], order["reason"]) == (status, reason)
    if status == "CONFIRMED":
        assert Decimal(order["total"]) == Decimal("20.00")
        shop.wait_stock(sku, on_hand=1, reserved=0)
    else:
        shop.wait_stock(sku, on_hand=3, reserved=0)

    charge = wait_for(lambda: (p := payment(provider, order_id))["status"] == final_payment and p)
    assert charge["counts"]["authorizations_created"] == 1  # never charged twice
    assert charge["counts"]["authorize_calls"] == authorize_calls
    assert Decimal(charge["amount"]) == Decimal("20.00")


def test_provider_outage_rejects_with_payment_unavailable(
    shop: Shop, provider: httpx.Client
) -> None:
    sku = unique_sku("OUTAGE")
    shop.seed(sku, "4.00", 2)
    provider.post("/v1/faults", json={"unavailable": True}).raise_for_status()
    try:
        order = shop.settled(shop.order_id([(sku, 1)]))
    finally:
        provider.post("/v1/faults", json={"unavailable": False}).raise_for_status()

    assert (order["status"], order["reason"]) == ("REJECTED", "PAYMENT_UNAVAILABLE")
    shop.wait_stock(sku, on_hand=2, reserved=0)

    # Once the breaker closes again, payments go through.
    time.sleep(BREAKER_RESET_SECONDS)
    assert shop.settled(shop.order_id([(sku, 1)]))["status"] == "CONFIRMED"


def test_unpaid_order_expires_and_releases(shop: Shop, provider: httpx.Client) -> None:
    sku = unique_sku("EXPIRE")
    shop.seed(sku, "7.00", 4)
    # The card holder never completes the bank's challenge: the payment stays pending.
    order_id = shop.order_id([(sku, 3)], token="tok_pending")
    shop.wait_stock(sku, on_hand=4, reserved=3)

    order = shop.settled(order_id, wait=RESERVATION_TTL_SECONDS + 20)
    assert (order["status"], order["reason"]) == ("EXPIRED", "RESERVATION_EXPIRED")
    shop.wait_stock(sku, on_hand=4, reserved=0)
    wait_for(lambda: payment(provider, order_id)["status"] == "VOIDED")


def test_cancel_before_confirmation_releases_and_voids(shop: Shop, provider: httpx.Client) -> None:
    sku = unique_sku("CANCEL-EARLY")
    shop.seed(sku, "5.00", 2)
    order_id = shop.order_id([(sku, 2)], token="tok_pending")
    wait_for(lambda: shop.status(order_id) == "RESERVED")

    r = shop.http.post(f"/v1/orders/{order_id}/cancel", headers=shop.headers)
    assert r.status_code == 202, r.text

    order = shop.settled(order_id)
    assert (order["status"], order["reason"]) == ("CANCELLED", "CUSTOMER_CANCELLED")
    shop.wait_stock(sku, on_hand=2, reserved=0)
    wait_for(lambda: payment(provider, order_id)["status"] == "VOIDED")


def test_cancel_after_confirmation_refunds_and_returns_stock(
    shop: Shop, provider: httpx.Client
) -> None:
    sku = unique_sku("CANCEL-LATE")
    shop.seed(sku, "8.00", 3)
    order_id = shop.order_id([(sku, 2)])
    assert shop.settled(order_id)["status"] == "CONFIRMED"
    shop.wait_stock(sku, on_hand=1, reserved=0)
    wait_for(lambda: payment(provider, order_id)["status"] == "CAPTURED")

    r = shop.http.post(f"/v1/orders/{order_id}/cancel", headers=shop.headers)
    assert r.status_code == 202, r.text

    assert wait_for(lambda: shop.status(order_id) == "CANCELLED")
    shop.wait_stock(sku, on_hand=3, reserved=0)
    refunded = wait_for(lambda: (p := payment(provider, order_id))["status"] == "REFUNDED" and p)
    assert [h["operation"] for h in refunded["history"]] == ["authorize", "capture", "refund"]


def test_cancelling_a_rejected_order_is_refused(shop: Shop) -> None:
    order_id = shop.order_id([(unique_sku("GONE"), 1)])
    assert shop.settled(order_id)["status"] == "REJECTED"
    r = shop.http.post(f"/v1/orders/{order_id}/cancel", headers=shop.headers)
    # Accepted as a command (no worker is asked); the saga refuses it.
    assert shop.refused(r) == "ORDER_NOT_CANCELLABLE"
    assert shop.status(order_id) == "REJECTED"


def test_idempotency_key(shop: Shop) -> None:
    sku = unique_sku("IDEM")
    shop.seed(sku, "3.00", 10)
    first = shop.place([(sku, 2)], key="key-1-" + sku)
    again = shop.place([(sku, 2)], key="key-1-" + sku)
    assert first.status_code == again.status_code == 202
    assert first.json()["order_id"] == again.json()["order_id"]
    assert first.headers["Location"] == f"/v1/orders/{first.json()['order_id']}"
    assert shop.settled(first.json()["order_id"])["status"] == "CONFIRMED"
    after = shop.place([(sku, 2)], key="key-1-" + sku)
    assert after.json()["order_id"] == first.json()["order_id"]
    # One order's worth of stock left, however often the request was sent.
    shop.wait_stock(sku, on_hand=8, reserved=0)

    different = shop.place([(sku, 3)], key="key-1-" + sku)
    assert different.status_code == 409

    r = shop.http.post(
        "/v1/orders",
        json={
            "items": [{"sku": sku, "quantity": 1}],
            "payment": {"method": "card", "token": "tok_ok"},
        },
        headers=shop.headers,
    )
    assert r.status_code == 400
