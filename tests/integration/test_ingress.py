"""The ingress takes commands while the worker is down (issue 7, section 2).

Kafka is the buffer: with the worker stopped (SIGSTOP: it holds its partitions
but answers nothing) or killed (SIGKILL: the launcher restarts it), every command
route answers 202, reads answer 503 with Retry-After, and what was accepted is
processed once the worker is back.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import time
import urllib.parse
import uuid
from collections.abc import Iterator

import pytest

from tests.integration.conftest import Stack, wait_for
from tests.integration.shop import SELLER, Shop, unique_sku

pytestmark = pytest.mark.integration

CARD = {"method": "card", "token": "tok_ok"}
SETTLED = {"CONFIRMED", "REJECTED", "EXPIRED", "CANCELLED"}


def settled(shop: Shop, order_id: str) -> dict:
    """The order once settled; reads may answer 503 for a while as the worker comes back."""

    def check() -> dict | None:
        r = shop.http.get(f"/v1/orders/{order_id}", params={"wait": 5}, headers=shop.headers)
        return r.json() if r.status_code == 200 and r.json()["status"] in SETTLED else None

    return dict(wait_for(check, timeout=180))


@contextlib.contextmanager
def worker_stopped(stack: Stack) -> Iterator[int]:
    """worker-1 frozen for the block, resumed after it whatever happens."""
    pid = stack.process("worker-1")["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


def test_every_command_is_accepted_while_the_worker_is_stopped_and_processed_after(
    stack: Stack, shop: Shop
) -> None:
    sku = unique_sku("FROZEN")
    shop.seed(sku, "2.00", 10)
    new_sku = unique_sku("FROZEN-NEW")
    cart = f"frozen-{uuid.uuid4().hex[:8]}"
    customer = {**shop.headers, "Idempotency-Key": "frozen-checkout"}

    with worker_stopped(stack):
        placed = [shop.place([(sku, 1)]) for _ in range(4)]
        to_cancel = placed[0].json()["order_id"] if placed[0].status_code == 202 else ""
        accepted = [
            *placed,
            shop.http.post(f"/v1/orders/{to_cancel}/cancel", headers=shop.headers),
            shop.http.put(
                f"/v1/products/{new_sku}",
                json={"name": "New", "price": "1.50", "currency": "BRL"},
                headers=SELLER,
            ),
            shop.http.post(
                f"/v1/inventory/{new_sku}/restock", json={"quantity": 3}, headers=SELLER
            ),
            shop.http.put(f"/v1/carts/{cart}/items/{sku}", json={"quantity": 2}, headers=customer),
            shop.http.delete(f"/v1/carts/{cart}/items/{new_sku}", headers=customer),
            shop.http.post(f"/v1/carts/{cart}/checkout", json={"payment": CARD}, headers=customer),
        ]
        assert [r.status_code for r in accepted] == [202] * len(accepted), [
            r.text for r in accepted if r.status_code != 202
        ]
        # Reads are the one thing that waits for the worker.
        read = shop.http.get(f"/v1/orders/{to_cancel}", headers=shop.headers)
        assert read.status_code == 503, read.text
        assert read.headers["Retry-After"]

    # Back: everything accepted while it was stopped is processed, in order per key.
    order_ids = [r.json()["order_id"] for r in placed]
    statuses = [settled(shop, order_id)["status"] for order_id in order_ids]
    assert statuses == ["CANCELLED", "CONFIRMED", "CONFIRMED", "CONFIRMED"]
    cart_order = settled(shop, accepted[-1].json()["order_id"])
    assert (cart_order["status"], cart_order["total"]) == ("CONFIRMED", "4.00")
    wait_for(lambda: (shop.inventory(new_sku) or {}).get("on_hand") == 3)
    shop.wait_stock(sku, on_hand=5, reserved=0)


def test_orders_placed_while_the_worker_is_killed_settle_once_it_is_back(
    stack: Stack, shop: Shop
) -> None:
    sku = unique_sku("KILLED")
    shop.seed(sku, "1.00", 20)
    before = stack.process("worker-1")

    os.kill(before["pid"], signal.SIGKILL)
    # Right away, while the launcher has yet to notice and restart it.
    placed = [shop.place([(sku, 1)]) for _ in range(10)]
    assert [r.status_code for r in placed] == [202] * 10, [r.text for r in placed]

    wait_for(
        lambda: (
            (p := stack.process("worker-1"))["restarts"] == before["restarts"] + 1
            and p["state"] == "running"
        ),
        timeout=120,
    )
    for response in placed:
        assert settled(shop, response.json()["order_id"])["status"] == "CONFIRMED"
    shop.wait_stock(sku, on_hand=10, reserved=0)


def test_an_idle_keep_alive_connection_still_gets_an_answer(stack: Stack) -> None:
    """A client reusing a connection idle for longer than uvicorn's default (5 s) is answered.

    With both ends closing idle connections after 5 s, a request sent at that moment
    got no answer at all (the chaos suite's flood saw it as RemoteProtocolError).
    """
    url = urllib.parse.urlsplit(stack.gateway_url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        conn.request("GET", "/health")
        assert conn.getresponse().read() and conn.sock is not None
        first_socket = conn.sock
        time.sleep(7)
        # On a connection the server has closed this raises RemoteDisconnected.
        conn.request("GET", "/health")
        response = conn.getresponse()
        assert (response.status, conn.sock) == (200, first_socket)
        response.read()
    finally:
        conn.close()
