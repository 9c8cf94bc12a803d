"""OpenTelemetry tracing: off unless an OTLP endpoint is set, then one trace per order.

`setup(service)` turns it on in a process when OTEL_EXPORTER_OTLP_ENDPOINT is
set (core.settings) and the `otel` extra is installed: spans go to that endpoint
over OTLP/HTTP (Jaeger, an OpenTelemetry collector).
The gateway opens a span per HTTP request (core.http_observe), each agent one
per message it handles (streams.dead_letters), and every Kafka message sent
inside a span carries its W3C `traceparent` header, which the next agent's span
continues: one order's saga, from the request through every agent, is one trace.

Off, nothing here is imported beyond this module, and the hot path pays one
boolean test per message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

# Headers that carry the trace context (W3C Trace Context).
HEADERS = ("traceparent", "tracestate")

ENABLED = False
_tracer: Any = None


def endpoint() -> str:
    """Where spans go (OTLP/HTTP traces URL); empty when tracing is off."""
    from core.settings import get_settings

    base = get_settings().otlp_endpoint.strip().rstrip("/")
    return f"{base}/v1/traces" if base else ""


def setup(service: str) -> bool:
    """Send this process's spans to the OTLP endpoint, as `service`; False when off."""
    global ENABLED, _tracer
    url = endpoint()
    if ENABLED or not url:
        return ENABLED
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "an OTLP endpoint is set but tracing is not installed: pip install momentum[otel]"
        )
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    # Batched: spans leave in the background, off the hot path.
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    trace.set_tracer_provider(provider)
    _tracer = trace.get_tracer("momentum")
    ENABLED = True
    log.info("tracing on: spans of %s go to %s", service, url)
    return True


def inject() -> list[tuple[str, bytes]]:
    """The current span's context as Kafka headers (none outside a span)."""
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(key, value.encode()) for key, value in carrier.items() if key in HEADERS]


def current_traceparent() -> str | None:
    """The current span's W3C traceparent, to keep with state; None when tracing is off."""
    if not ENABLED:
        return None
    return dict(inject()).get("traceparent", b"").decode() or None


@contextmanager
def continuing(name: str, traceparent: str | None, order_id: str) -> Iterator[Any]:
    """A span continuing a trace kept with an order (`traceparent`); nothing when tracing
    is off or no trace was kept."""
    if not ENABLED or not traceparent:
        yield None
        return
    from opentelemetry.trace import SpanKind

    with _tracer.start_as_current_span(
        name,
        context=_context({"traceparent": traceparent}),
        kind=SpanKind.PRODUCER,
        attributes={"momentum.order_id": order_id},
    ) as span:
        yield span


def _context(carrier: Mapping[str, str]) -> Any:
    from opentelemetry import propagate

    return propagate.extract(carrier)


@contextmanager
def consuming(
    name: str, headers: Mapping[str, str], attributes: Mapping[str, Any]
) -> Iterator[Any]:
    """A consumer span for one message, continuing the trace its headers carry."""
    from opentelemetry.trace import SpanKind

    with _tracer.start_as_current_span(
        name, context=_context(headers), kind=SpanKind.CONSUMER, attributes=dict(attributes)
    ) as span:
        yield span


@contextmanager
def serving(name: str, headers: Mapping[str, str]) -> Iterator[Any]:
    """A server span for one HTTP request, continuing the caller's trace if it sent one."""
    from opentelemetry.trace import SpanKind

    with _tracer.start_as_current_span(
        name, context=_context(headers), kind=SpanKind.SERVER
    ) as span:
        yield span
