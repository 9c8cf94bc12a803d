"""What every HTTP process of Momentum reports about its requests, and its /metrics page.

The gateway, the sink, the schema registry stand-in and the card provider are
FastAPI apps; each has a Prometheus registry of its own (not the default one
with its process collectors), and `observe_requests` counts and times every
request by route template (`/v1/orders/{order_id}`, never the raw path, so the
label stays small), method and status. With `correlate=True` (the gateway) a
request also gets its correlation id (core.observe): the caller's
`X-Correlation-ID` or a new one, answered in the same header.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as render
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import observe, tracing

# Requests take from under a millisecond (health) to tens of seconds (long polls).
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The route label of a request that no route took (404, or refused before routing).
NO_ROUTE = "none"
_CORRELATION_HEADER = observe.HTTP_CORRELATION_HEADER.lower().encode()


class HttpMetrics:
    """The request metrics of one process, in `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "momentum_http_requests",
            "HTTP requests answered, per route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.seconds = Histogram(
            "momentum_http_request_seconds",
            "Time to answer an HTTP request, per route template and method.",
            ["route", "method"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )


class ObserveRequests:
    """Counts and times each request; binds its correlation id when `correlate`."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics, correlate: bool = False) -> None:
        self.app = app
        self.metrics = metrics
        self.correlate = correlate
        # Bounded: templates, methods and statuses are few (unrouted paths are NO_ROUTE).
        self._bound: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500
        correlation: bytes | None = None
        if self.correlate:
            given = dict(scope["headers"]).get(_CORRELATION_HEADER)
            # A caller's id is kept if it is sane; anything else gets a new one.
            if given is None or not 0 < len(given) <= 128 or not given.isascii():
                given = observe.new_correlation_id().encode()
            correlation = given
            observe.bind(observe.Ids(given.decode()))

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if correlation is not None:
                    headers = [*message.get("headers", ()), (_CORRELATION_HEADER, correlation)]
                    message = {**message, "headers": headers}
            await send(message)

        method = scope["method"]
        try:
            if tracing.ENABLED:
                await self._traced(scope, receive, send_observed)
            else:
                await self.app(scope, receive, send_observed)
        finally:
            requests, seconds = self._children(route_template(scope), method, status)
            requests.inc()
            seconds.observe(time.perf_counter() - began)

    def _children(self, template: str, method: str, status: int) -> tuple[Any, Any]:
        """The metrics' children for these labels, bound once (`labels` costs microseconds)."""
        key = (template, method, status)
        children = self._bound.get(key)
        if children is None:
            children = self._bound[key] = (
                self.metrics.requests.labels(template, method, str(status)),
                self.metrics.seconds.labels(template, method),
            )
        return children

    async def _traced(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The request in a server span (the commands it sends carry its context)."""
        carrier = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope["headers"]
            if key.decode("latin-1") in tracing.HEADERS
        }
        method = scope["method"]
        with tracing.serving(method, carrier) as span:
            correlation = observe.current().correlation_id
            if correlation:
                span.set_attribute("momentum.correlation_id", correlation)
            status = 500

            async def send_traced(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await self.app(scope, receive, send_traced)
            finally:
                template = route_template(scope)
                span.update_name(f"{method} {template}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", template)
                span.set_attribute("http.response.status_code", status)


# FastAPI 0.16x has OpenTelemetry of its own: request spans once a tracer provider is
# set, and on every request it asks the global tracer, meter and logger providers whether
# any is configured (environment lookups: about 5% of the gateway's CPU per request).
# Ours are kept: spans with the route template and the correlation id, Prometheus metrics.
NATIVE_TELEMETRY_OFF: dict[str, Any] = (
    {
        "telemetry": {
            "tracing": False,
            "metrics": False,
            "logs": False,
            "operation_spans": False,
        }
    }
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


def route_template(scope: Scope) -> str:
    """The template of the route that took the request, with its router's prefix.

    FastAPI 0.16x includes routers lazily: `scope["route"]` is then the route as its
    router declared it (`/orders`), and the full template (`/v1/orders`) is in the
    effective route context FastAPI keeps in the scope; older versions copy included
    routes with the prefix, and `scope["route"].path` is the full template.
    """
    context = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(context, "path_format", None) or getattr(scope.get("route"), "path", None)
    return template or NO_ROUTE


def observe_requests(
    app: FastAPI, *, registry: CollectorRegistry | None = None, correlate: bool = False
) -> HttpMetrics:
    """Count and time `app`'s requests and serve `registry` (a new one by default) at GET
    /metrics; add this middleware last, so it sees every answer (refusals by other
    middleware included)."""
    metrics = HttpMetrics(registry or CollectorRegistry())
    app.add_middleware(ObserveRequests, metrics=metrics, correlate=correlate)
    serve_metrics(app, metrics.registry)
    return metrics


def serve_metrics(app: FastAPI, registry: CollectorRegistry) -> None:
    @app.get("/metrics", include_in_schema=False)
    def metrics_page() -> Response:
        return Response(render(registry), media_type=CONTENT_TYPE_LATEST)
