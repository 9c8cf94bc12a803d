"""The worker's /metrics/ page and what the agents record on it, without a broker."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiohttp.web import Response
from prometheus_client.parser import text_string_to_metric_families

from core import observe
from core.topics import ORDER_COMMANDS
from schemas import envelopes, messages
from streams import dead_letters, metrics, sending, web
from streams.inventory import agents as inventory_agents
from streams.inventory import rules as inventory_rules
from streams.orders import agents as order_agents
from streams.payments import agents as payment_agents
from streams.payments.client import Operation, OperationOutcome, OperationResult
from tests.support.agents import Wire, install


class AiohttpView:
    """Builds responses the way Faust's aiohttp driver does (`Web.bytes`)."""

    def bytes(self, value: bytes, **options: Any) -> Response:
        return Response(body=value, **options)


def sample(name: str, **labels: str) -> float | None:
    """A sample of the worker's registry, as a scrape would read it."""
    return metrics.REGISTRY.get_sample_value(name, labels)


def page_sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


async def test_the_page_serves_the_registry_in_the_prometheus_text_format() -> None:
    metrics.PROCESSED.labels(agent="page-test", topic="metrics-test").inc()
    metrics.SENT.labels(topic="metrics-test").inc(2)
    metrics.DEAD_LETTERS.labels(topic="metrics-test", error="bad-magic-byte").inc()
    response = await web.metrics_page.get(AiohttpView(), None)
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    assert isinstance(response.body, bytes)
    text = response.body.decode()
    labels = {"agent": "page-test", "topic": "metrics-test"}
    assert page_sample(text, "momentum_processed_total", **labels) == 1
    assert page_sample(text, "momentum_sent_total", topic="metrics-test") == 2
    labels = {"topic": "metrics-test", "error": "bad-magic-byte"}
    assert page_sample(text, "momentum_dead_letters_total", **labels) == 1
    # Read at the scrape from the worker: present even when the worker holds nothing.
    assert "momentum_consumer_lag_records" in text
    assert "momentum_table_rows" in text


def test_the_agent_label_is_the_flow_of_the_handler() -> None:
    assert metrics.agent_of(order_agents.apply_order_message) == "orders"
    assert metrics.agent_of(inventory_agents.apply_inventory_command) == "inventory"


async def test_a_handled_event_is_counted_and_timed_per_agent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Codec:
        def decode(self, data: bytes) -> dict[str, Any]:
            return {"order_id": "o-1"}

    monkeypatch.setattr(dead_letters, "value_codec", lambda spec: Codec())
    message = SimpleNamespace(
        topic=ORDER_COMMANDS.name, partition=0, offset=1, key=b"o-1", value=b"v", headers=[]
    )

    async def handler(key: str, value: Any) -> None:
        pass

    before = sample("momentum_processing_seconds_count", agent="timing-test") or 0
    event = cast(Any, SimpleNamespace(message=message))
    await dead_letters.handle_event(event, handler, "timing-test")
    await dead_letters.handle_event(event, handler, "timing-test")
    labels = {"agent": "timing-test", "topic": ORDER_COMMANDS.name}
    assert sample("momentum_processed_total", **labels) == 2
    assert sample("momentum_processing_seconds_count", agent="timing-test") == before + 2


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    return install(monkeypatch, order_agents, "orders", "open_orders")


def place(order_id: str) -> messages.OrderCommand:
    return envelopes.order_command(
        order_id,
        messages.place_order(
            customer_id="alice",
            lines=[{"sku": "a", "quantity": 1}],
            payment={"method": "CARD", "token": "tok_ok"},
            request_hash="h",
        ),
    )


async def test_a_settled_order_is_counted_by_status_and_reason(wire: Wire) -> None:
    labels = {"status": "REJECTED", "reason": "OUT_OF_STOCK"}
    before = sample("momentum_orders_settled_total", **labels) or 0
    await order_agents.apply_order_message("o-1", place("o-1"))
    rejected = messages.stock_rejected(sku="a", reason="OUT_OF_STOCK")
    await order_agents.apply_order_message("o-1", envelopes.order_event("o-1", rejected))
    # The same reply again changes nothing and is not counted again.
    await order_agents.apply_order_message("o-1", envelopes.order_event("o-1", rejected))
    assert sample("momentum_orders_settled_total", **labels) == before + 1


async def test_the_order_keeps_the_correlation_id_it_was_placed_under(
    wire: Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    with observe.bound(observe.Ids("placed-under")):
        await order_agents.apply_order_message("o-1", place("o-1"))
    # A reply under another id (or none) does not replace it.
    reserved = messages.stock_reserved(
        sku="a", quantity=1, unit_price=Decimal("1.00"), currency="EUR"
    )
    with observe.bound(observe.Ids("other")):
        await order_agents.apply_order_message("o-1", envelopes.order_event("o-1", reserved))
    assert order_agents.orders["o-1"]["correlation_id"] == "placed-under"

    # The expiry timer, which handles no message, sends ExpireOrder under that id.
    under: list[str | None] = []

    async def send(spec: Any, key: str, value: Any) -> None:
        under.append(observe.current().correlation_id)

    monkeypatch.setattr(sending, "send", send)
    order_agents.open_orders[b"o-1"] = 0
    await order_agents.ask_to_expire(int(datetime.now(UTC).timestamp() * 1000))
    assert under == ["placed-under"]
    assert observe.current().correlation_id is None  # bound for that send only


def test_reservations_are_counted_granted_and_rejected() -> None:
    granted = {"outcome": "granted", "reason": ""}
    rejected = {"outcome": "rejected", "reason": "OUT_OF_STOCK"}
    before = sample("momentum_reservations_total", **granted) or 0
    before_rejected = sample("momentum_reservations_total", **rejected) or 0
    inventory_agents.count_reservation(
        inventory_rules.Granted(quantity=1, unit_price=Decimal("1.00"), currency="EUR")
    )
    inventory_agents.count_reservation(
        inventory_rules.Refused(inventory_rules.RejectReason.OUT_OF_STOCK)
    )
    assert sample("momentum_reservations_total", **granted) == before + 1
    assert sample("momentum_reservations_total", **rejected) == before_rejected + 1


async def test_payment_calls_are_counted_by_outcome_and_timed() -> None:
    async def capture(client: Any, order_id: str) -> OperationResult:
        return OperationResult(order_id, Operation.CAPTURE, OperationOutcome.UNAVAILABLE)

    labels = {"operation": "capture", "outcome": "UNAVAILABLE"}
    before = sample("momentum_payment_calls_total", **labels) or 0
    result = await payment_agents.timed(capture)(cast(Any, None), "o-1")
    assert result.outcome is OperationOutcome.UNAVAILABLE
    assert sample("momentum_payment_calls_total", **labels) == before + 1
    assert (sample("momentum_payment_call_seconds_count", operation="capture") or 0) >= 1


def test_lag_and_table_sizes_are_read_at_each_scrape() -> None:
    figures = {"lag": [("orders-commands", 0, 3)], "sizes": [("orders", 5)]}
    collector = metrics.WorkerState(lambda: figures["lag"], lambda: figures["sizes"])
    lag, rows = list(collector.collect())
    assert [(s.labels, s.value) for s in lag.samples] == [
        ({"topic": "orders-commands", "partition": "0"}, 3)
    ]
    assert [(s.labels, s.value) for s in rows.samples] == [({"table": "orders"}, 5)]
    figures["lag"] = [("orders-commands", 0, 0)]
    [lag, _] = list(collector.collect())
    assert lag.samples[0].value == 0
