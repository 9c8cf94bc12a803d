"""What an operator sees of the running embedded stack: /metrics of every process,
the metrics the Grafana dashboard queries, and one correlation id per order."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from core.end_offsets import end_offsets
from tests.integration.conftest import Stack, wait_for
from tests.integration.shop import Shop, unique_sku
from tests.unit.test_ops_config import dashboard_metrics

pytestmark = pytest.mark.integration

# Every process of the stack that serves /metrics (the broker and Postgres do not).
SERVING = ("gateway", "worker-1", "sink", "schema-registry", "payment-provider")
# Sample names Prometheus derives from a family's name, by family type.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}


class Scrape:
    """One process's /metrics page, parsed."""

    def __init__(self, text: str) -> None:
        self.families = list(text_string_to_metric_families(text))

    def exported(self) -> set[str]:
        """Every name a query may use: the samples a family has or will have."""
        names = set()
        for family in self.families:
            for suffix in SUFFIXES.get(family.type, ("",)):
                names.add(family.name + suffix)
        return names

    def value(self, name: str, **labels: str) -> float:
        """The sum of `name`'s samples that carry `labels`."""
        return sum(
            s.value
            for family in self.families
            for s in family.samples
            if s.name == name and labels.items() <= s.labels.items()
        )


def scrape(stack: Stack, name: str) -> Scrape:
    process = stack.process(name)
    # Faust serves its pages with a trailing slash.
    path = "/metrics/" if name.startswith("worker") else "/metrics"
    response = httpx.get(process["url"] + path, timeout=10)
    assert response.status_code == 200, (name, response.text)
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)


def test_every_metric_the_dashboard_queries_is_exported_and_an_order_moves_them(
    stack: Stack, shop: Shop
) -> None:
    sku = unique_sku("MET")
    shop.seed(sku, "4.00", 5)
    order_id = shop.order_id([(sku, 2)])
    assert shop.settled(order_id)["status"] == "CONFIRMED"

    def scraped() -> dict[str, Scrape]:
        return {name: scrape(stack, name) for name in SERVING}

    # The sink writes the order's rows a moment after the saga settles it.
    pages = wait_for(
        lambda: (p := scraped())["sink"].value("momentum_sink_batch_seconds_count") > 0 and p,
        timeout=60,
    )
    exported = set().union(*(page.exported() for page in pages.values()))
    missing = dashboard_metrics() - exported
    assert not missing, f"the dashboard queries metrics no process exports: {sorted(missing)}"

    worker, gateway = pages["worker-1"], pages["gateway"]
    assert worker.value("momentum_orders_settled_total", status="CONFIRMED") >= 1
    assert worker.value("momentum_processed_total", agent="orders") >= 3
    assert worker.value("momentum_processing_seconds_count", agent="inventory") >= 1
    assert worker.value("momentum_reservations_total", outcome="granted") >= 1
    assert worker.value("momentum_payment_calls_total", operation="authorize") >= 1
    assert worker.value("momentum_payment_call_seconds_count", operation="capture") >= 1
    assert worker.value("momentum_table_rows", table="orders") >= 1
    lag = [f for f in worker.families if f.name == "momentum_consumer_lag_records"]
    assert lag and {s.labels["topic"] for s in lag[0].samples} >= {"order-commands"}
    route = {"route": "/v1/orders", "method": "POST", "status": "202"}
    assert gateway.value("momentum_http_requests_total", **route) >= 1
    assert gateway.value("momentum_gateway_commands_total", topic="order-commands") >= 1
    assert gateway.value("momentum_http_request_seconds_count", route="/v1/orders") >= 1
    assert pages["sink"].value("momentum_sink_records_written_total", topic="orders") >= 1
    # The registry and the provider count the requests the pipeline made of them.
    assert pages["schema-registry"].value("momentum_http_requests_total") >= 1
    provider = {"route": "/v1/authorizations", "status": "200"}
    assert pages["payment-provider"].value("momentum_http_requests_total", **provider) >= 1


def records(stack: Stack, topic: str) -> list[tuple[bytes | None, dict[str, bytes]]]:
    """Every record of `topic` so far, as (key, headers)."""
    config = {"bootstrap.servers": stack.bootstrap}
    consumer = Consumer({**config, "group.id": f"t-{uuid.uuid4()}", "enable.auto.commit": False})
    try:
        partitions = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        # The true end: Tansu's ListOffsets answer stops at the last batch's base + 1.
        ends = end_offsets(config, [(topic, p) for p in partitions], from_fetch=True)
        wanted = sum(ends.values())
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        found: list[tuple[bytes | None, dict[str, bytes]]] = []
        while len(found) < wanted:
            message = consumer.poll(5)
            assert message is not None, f"{topic}: {len(found)} of {wanted} records read"
            assert message.error() is None, message.error()
            found.append((message.key(), dict(message.headers() or [])))
        return found
    finally:
        consumer.close()


def test_one_order_is_one_correlation_id_from_the_gateway_through_every_agent(
    stack: Stack, shop: Shop
) -> None:
    sku = unique_sku("COR")
    shop.seed(sku, "3.00", 5)
    correlation_id = f"test-{uuid.uuid4().hex}"
    response = shop.http.post(
        "/v1/orders",
        json={
            "items": [{"sku": sku, "quantity": 1}],
            "payment": {"method": "card", "token": "tok_ok"},
        },
        headers={
            **shop.headers,
            "Idempotency-Key": str(uuid.uuid4()),
            "X-Correlation-ID": correlation_id,
        },
    )
    assert response.status_code == 202, response.text
    assert response.headers["X-Correlation-ID"] == correlation_id
    order_id = response.json()["order_id"]
    assert shop.settled(order_id)["status"] == "CONFIRMED"

    # Every command and reply about the order carries the id, in every hop of the saga:
    # gateway -> saga -> inventory -> saga -> payments -> saga -> payments (capture).
    about = {
        "order-commands": order_id.encode(),
        "inventory-commands": sku.encode(),
        "order-events": order_id.encode(),
        "payment-commands": order_id.encode(),
    }

    def carried() -> dict[str, list[bytes | None]] | None:
        seen = {
            topic: [h.get("correlation.id") for k, h in records(stack, topic) if k == key]
            for topic, key in about.items()
        }
        # Placed, then the capture after the authorization: the last hop has landed.
        return seen if len(seen["payment-commands"]) >= 2 else None

    seen = wait_for(carried, timeout=60)
    ours = correlation_id.encode()
    for topic in ("order-commands", "order-events", "payment-commands"):
        assert seen[topic] and set(seen[topic]) == {ours}, (topic, seen[topic])
    # The sku's upsert and restock were requests of their own, each with its own id.
    stock = seen["inventory-commands"]
    assert None not in stock and stock.count(ours) >= 2, stock  # reserve, then commit
    assert len(set(stock)) == 3, stock

    # The worker's log (JSON lines) has one INFO line per status change, with the ids.
    log = Path(stack.process("worker-1")["log"])

    def transitions() -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in log.read_text().splitlines() if order_id in line]
        return [
            line
            for line in lines
            if line.get("logger") == "streams.orders.agents" and line["level"] == "INFO"
        ]

    changes = wait_for(lambda: len(t := transitions()) >= 3 and t, timeout=30)
    assert [c["order_status"] for c in changes] == ["PENDING", "RESERVED", "CONFIRMED"]
    for change in changes:
        assert change["correlation_id"] == correlation_id
        assert change["order_id"] == order_id
