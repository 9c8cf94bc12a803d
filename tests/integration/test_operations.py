"""Carts, notifications and dead-letter replay, end to end on the embedded stack."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.integration.conftest import (
    BREAKER_RESET_SECONDS,
    CART_IDLE_SECONDS,
    Stack,
    momentum,
    wait_for,
)
from tests.integration.shop import Shop, unique_sku

pytestmark = pytest.mark.integration


def cli_env(stack: Stack) -> dict[str, str]:
    return {
        **stack.env,
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
        "SCHEMA_REGISTRY_URL": stack.registry_url,
    }


def test_cart_checkout_places_one_order(shop: Shop) -> None:
    tee, mug = unique_sku("CART-TEE"), unique_sku("CART-MUG")
    shop.seed(tee, "20.00", 5)
    shop.seed(mug, "15.00", 5)
    cart = f"cart-{uuid.uuid4().hex[:8]}"
    for sku, quantity in ((tee, 1), (mug, 3), (tee, 2)):
        r = shop.http.put(
            f"/v1/carts/{cart}/items/{sku}", json={"quantity": quantity}, headers=shop.headers
        )
        assert r.status_code == 202, r.text
    wait_for(
        lambda: (
            shop.http.get(f"/v1/carts/{cart}", headers=shop.headers).status_code == 200
            and len(shop.http.get(f"/v1/carts/{cart}", headers=shop.headers).json()["items"]) == 2
            and shop.http.get(f"/v1/carts/{cart}", headers=shop.headers).json()
        )
    )
    other = shop.http.get(f"/v1/carts/{cart}", headers=Shop(shop.http, "intruder").headers)
    assert other.status_code == 404

    body = {"payment": {"method": "card", "token": "tok_ok"}}
    checkouts = [
        shop.http.post(
            f"/v1/carts/{cart}/checkout",
            json=body,
            headers={**shop.headers, "Idempotency-Key": key},
        )
        for key in ("co-1", "co-1", "co-2")
    ]
    assert {r.status_code for r in checkouts} == {202}
    order_ids = {r.json()["order_id"] for r in checkouts}
    assert len(order_ids) == 1  # checked out once, whatever the retries
    order = shop.settled(order_ids.pop())
    assert order["status"] == "CONFIRMED"
    assert sorted((line["sku"], line["quantity"]) for line in order["lines"]) == sorted(
        [(tee, 2), (mug, 3)]
    )
    assert order["total"] == "85.00"
    shop.wait_stock(tee, on_hand=3, reserved=0)
    shop.wait_stock(mug, on_hand=2, reserved=0)
    cart_view = shop.http.get(f"/v1/carts/{cart}", headers=shop.headers).json()
    assert cart_view["status"] == "CHECKED_OUT"


def notifications_for(stack: Stack, subject_id: str) -> list[dict]:
    registry = SchemaRegistryClient({"url": stack.registry_url})
    values = AvroDeserializer(registry)
    consumer = Consumer(
        {
            "bootstrap.servers": stack.bootstrap,
            "group.id": f"t-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        topic = consumer.list_topics("notifications", timeout=10).topics["notifications"]
        consumer.assign([TopicPartition("notifications", p, 0) for p in topic.partitions])
        found, ended = [], set()
        while len(ended) < len(topic.partitions):
            message = consumer.poll(5)
            if message is None:
                break
            if message.error():
                ended.add(message.partition())
                continue
            value = values(
                message.value(), SerializationContext("notifications", MessageField.VALUE)
            )
            if value["subject_id"] == subject_id:
                found.append(value)
        return found
    finally:
        consumer.close()


def test_settled_orders_notify_their_customer_once(stack: Stack, shop: Shop) -> None:
    sku = unique_sku("NOTIFY")
    shop.seed(sku, "2.00", 1)
    order_id = shop.order_id([(sku, 1)], token="tok_decline")
    assert shop.settled(order_id)["status"] == "REJECTED"

    sent = wait_for(lambda: notifications_for(stack, order_id))
    assert [(n["kind"], n["recipient"]) for n in sent] == [("ORDER_REJECTED", shop.customer)]


def test_low_stock_notifies_the_seller(stack: Stack, shop: Shop) -> None:
    sku = unique_sku("LOW")
    shop.seed(sku, "3.00", 6)  # threshold 5 by default
    assert shop.settled(shop.order_id([(sku, 2)]))["status"] == "CONFIRMED"

    sent = wait_for(lambda: notifications_for(stack, sku))
    assert [(n["kind"], n["recipient"]) for n in sent] == [("LOW_STOCK", "seller-tests")]


def test_idle_cart_is_abandoned_and_its_customer_notified(stack: Stack, shop: Shop) -> None:
    sku = unique_sku("IDLE")
    shop.seed(sku, "4.00", 3)
    cart = f"idle-{uuid.uuid4().hex[:8]}"
    r = shop.http.put(f"/v1/carts/{cart}/items/{sku}", json={"quantity": 2}, headers=shop.headers)
    assert r.status_code == 202

    def status() -> str | None:
        r = shop.http.get(f"/v1/carts/{cart}", headers=shop.headers)
        return r.json()["status"] if r.status_code == 200 else None

    assert wait_for(lambda: status() == "ABANDONED", timeout=CART_IDLE_SECONDS + 30)
    sent = wait_for(lambda: notifications_for(stack, cart))
    assert [(n["kind"], n["recipient"]) for n in sent] == [("CART_ABANDONED", shop.customer)]
    # An abandoned cart takes no more lines: the cart agent refuses the command.
    r = shop.http.put(f"/v1/carts/{cart}/items/{sku}", json={"quantity": 1}, headers=shop.headers)
    assert shop.refused(r) == "CART_CLOSED"
    items = shop.http.get(f"/v1/carts/{cart}", headers=shop.headers).json()["items"]
    assert items == [{"sku": sku, "quantity": 2}]


def test_dead_letter_replay_completes_a_refund_after_an_outage(
    stack: Stack, shop: Shop, provider: httpx.Client
) -> None:
    sku = unique_sku("REPLAY")
    shop.seed(sku, "6.00", 2)
    order_id = shop.order_id([(sku, 1)])
    assert shop.settled(order_id)["status"] == "CONFIRMED"
    wait_for(lambda: provider.get(f"/v1/payments/{order_id}").json()["status"] == "CAPTURED")

    # The refund of a cancelled order meets a provider outage: retried, then dead-lettered.
    provider.post("/v1/faults", json={"unavailable": True}).raise_for_status()
    try:
        r = shop.http.post(f"/v1/orders/{order_id}/cancel", headers=shop.headers)
        assert r.status_code == 202
        env = cli_env(stack)

        def parked() -> list[dict]:
            listed = momentum("dlq", "list", "payment-commands", "--json", env=env)
            letters = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
            return [x for x in letters if x.get("key") == order_id]

        letter = wait_for(parked, timeout=60)[0]
        assert letter["error"] == "handler-error"
        assert letter["source_topic"] == "payment-commands"
    finally:
        provider.post("/v1/faults", json={"unavailable": False}).raise_for_status()
    assert provider.get(f"/v1/payments/{order_id}").json()["status"] == "CAPTURED"

    time.sleep(BREAKER_RESET_SECONDS + 0.5)  # let the worker's circuit breaker close
    replayed = momentum("dlq", "replay", "payment-commands", env=env)
    assert replayed.returncode == 0, replayed.stderr
    wait_for(lambda: provider.get(f"/v1/payments/{order_id}").json()["status"] == "REFUNDED")
    shop.wait_stock(sku, on_hand=2, reserved=0)

    # A second replay sends nothing again.
    again = momentum("dlq", "replay", "payment-commands", env=env)
    assert again.returncode == 0
    counts = provider.get(f"/v1/payments/{order_id}").json()["counts"]
    assert counts["refund_calls"] >= 2  # the failed attempts, then the replayed one
    assert [h["operation"] for h in provider.get(f"/v1/payments/{order_id}").json()["history"]] == [
        "authorize",
        "capture",
        "refund",
    ]
