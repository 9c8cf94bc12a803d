"""Tracing on, with an in-memory exporter: an agent step continues the trace of the
message it handles, and what it sends carries the step's context on."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from core import observe, tracing
from core.topics import ORDER_COMMANDS
from streams import dead_letters


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("test"))
    monkeypatch.setattr(tracing, "ENABLED", True)
    yield exporter
    provider.shutdown()


def test_tracing_is_off_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import get_settings

    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    get_settings.cache_clear()
    try:
        assert tracing.endpoint() == ""
        assert tracing.setup("test") is False
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4318/")
        get_settings.cache_clear()
        assert tracing.endpoint() == "http://jaeger:4318/v1/traces"
    finally:
        get_settings.cache_clear()


async def test_an_agent_step_is_a_child_of_the_span_that_sent_its_message(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Codec:
        def decode(self, data: bytes) -> dict[str, Any]:
            return {"order_id": "o-1", "command_id": "cmd-1"}

    monkeypatch.setattr(dead_letters, "value_codec", lambda spec: Codec())
    sent_on: list[list[tuple[str, bytes]] | None] = []

    async def handler(key: str, value: Any) -> None:
        sent_on.append(observe.outgoing_headers())  # what a send in this step would carry

    # The request's span, as the gateway would have it, and the message it sent.
    with tracing.serving("POST /v1/orders", {}) as request, observe.bound(observe.Ids("c-1")):
        headers = observe.outgoing_headers()
    assert headers is not None and {k for k, _ in headers} == {"correlation.id", "traceparent"}
    message = SimpleNamespace(
        topic=ORDER_COMMANDS.name, partition=0, offset=5, key=b"o-1", value=b"v", headers=headers
    )
    await dead_letters.handle_event(cast(Any, SimpleNamespace(message=message)), handler, "orders")

    finished = {span.name: span for span in spans.get_finished_spans()}
    step = finished["orders order-commands"]
    assert step.kind is SpanKind.CONSUMER
    assert step.context.trace_id == request.get_span_context().trace_id
    assert step.parent is not None and step.parent.span_id == request.get_span_context().span_id
    assert step.attributes is not None
    assert step.attributes["momentum.order_id"] == "o-1"
    assert step.attributes["momentum.correlation_id"] == "c-1"
    # The step's sends carry its own context: the next agent's step is its child.
    [carried] = sent_on
    traceparent = dict(carried or [])["traceparent"].decode()
    assert traceparent.split("-")[1:3] == [
        f"{step.context.trace_id:032x}",
        f"{step.context.span_id:016x}",
    ]


def test_a_dead_letter_keeps_the_trace_context_too() -> None:
    kept = observe.kept_headers(
        {"traceparent": b"00-ab-cd-01", "correlation.id": b"c", "other": b"x"}
    )
    assert dict(kept) == {"traceparent": b"00-ab-cd-01", "correlation.id": b"c"}


async def test_an_expiry_continues_the_trace_of_the_step_that_placed_the_order(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from schemas import envelopes, messages
    from streams import sending
    from streams.orders import agents
    from tests.support.agents import install

    wire = install(monkeypatch, agents, "orders", "open_orders")
    carried: list[str | None] = []

    async def send(spec: Any, key: str, value: Any) -> None:
        carried.append(tracing.current_traceparent())  # what this send's headers carry
        await wire.send(spec, key, value)

    monkeypatch.setattr(sending, "send", send)
    place = envelopes.order_command(
        "o-1",
        messages.place_order(
            customer_id="alice",
            lines=[{"sku": "a", "quantity": 1}],
            payment={"method": "CARD", "token": "tok_ok"},
            request_hash="h",
        ),
    )
    origin: messages.MessageOrigin = {"topic": "order-commands", "partition": 0, "offset": 7}
    with tracing.serving("the saga's step", {}) as placing:
        await agents.apply_order_message("o-1", place, origin)
    trace_id = f"{placing.get_span_context().trace_id:032x}"
    assert agents.orders["o-1"]["trace_parent"].split("-")[1] == trace_id

    carried.clear()
    agents.open_orders[b"o-1"] = 0  # overdue
    await agents.ask_to_expire(1)

    [expire] = [s for s in spans.get_finished_spans() if s.name == "expire overdue order"]
    assert f"{expire.context.trace_id:032x}" == trace_id
    [traceparent] = carried
    assert traceparent is not None and traceparent.split("-")[1] == trace_id
    assert wire.on("order-commands")[-1]["payload"] == messages.expire_order()


def test_with_tracing_off_nothing_is_kept_and_no_span_is_made() -> None:
    assert tracing.ENABLED is False
    assert tracing.current_traceparent() is None
    with tracing.continuing("expire overdue order", "00-" + "1" * 32 + "-" + "2" * 16 + "-01", "o"):
        assert tracing.current_traceparent() is None
