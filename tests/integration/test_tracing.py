"""Tracing on: one order's saga is one connected trace across the gateway and the agents.

A stack of its own is started with OTEL_EXPORTER_OTLP_ENDPOINT pointing at an
OTLP/HTTP receiver this test runs in-process; the gateway and the worker are
separate processes exporting their spans to it, as they would to Jaeger.
"""

from __future__ import annotations

import gzip
import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.integration.conftest import STACK_ENV, auth, momentum, wait_for
from tests.integration.shop import SELLER, unique_sku

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Span:
    service: str
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    attributes: dict[str, Any]


class Receiver:
    """An OTLP/HTTP trace receiver keeping every span it is sent, in memory."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.keep(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def keep(self, request: ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {a.key: a.value for a in span.attributes}
                    found = Span(
                        service=resource.get("service.name", ""),
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex(),
                        name=span.name,
                        attributes={
                            k: v.string_value or v.int_value for k, v in attributes.items()
                        },
                    )
                    with self.lock:
                        self.spans.append(found)

    def all(self) -> list[Span]:
        with self.lock:
            return list(self.spans)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    running.thread.start()
    yield running
    running.server.shutdown()
    running.server.server_close()


@pytest.fixture(scope="module")
def traced_gateway(
    receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    state_dir: Path = tmp_path_factory.mktemp("traced-stack")
    env = {
        **os.environ,
        **STACK_ENV,
        "MOMENTUM_STATE_DIR": str(state_dir),
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
    }
    started = momentum("up", "--detach", "--state-dir", str(state_dir), env=env)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        status = momentum("status", "--json", "--state-dir", str(state_dir), env=env)
        gateway_url = json.loads(status.stdout)["endpoints"]["gateway_url"]
        with httpx.Client(base_url=gateway_url, timeout=40.0) as client:
            yield client
    finally:
        momentum("down", "--state-dir", str(state_dir), env=env)


def test_one_order_is_one_connected_trace_across_the_gateway_and_every_agent(
    receiver: Receiver, traced_gateway: httpx.Client
) -> None:
    http = traced_gateway
    sku = unique_sku("TRACE")
    product = {"name": "Traced", "price": "2.50", "currency": "BRL"}
    assert http.put(f"/v1/products/{sku}", json=product, headers=SELLER).status_code == 202
    restock = http.post(f"/v1/inventory/{sku}/restock", json={"quantity": 3}, headers=SELLER)
    assert restock.status_code == 202
    wait_for(
        lambda: (
            (r := http.get(f"/v1/inventory/{sku}", headers=SELLER)).status_code == 200
            and r.json()["on_hand"] == 3
        ),
        timeout=60,
    )

    customer = auth("traced-customer", "customer")
    correlation_id = f"trace-{uuid.uuid4().hex}"
    placed = http.post(
        "/v1/orders",
        json={
            "items": [{"sku": sku, "quantity": 1}],
            "payment": {"method": "card", "token": "tok_ok"},
        },
        headers={
            **customer,
            "Idempotency-Key": str(uuid.uuid4()),
            "X-Correlation-ID": correlation_id,
        },
    )
    assert placed.status_code == 202, placed.text
    order_id = placed.json()["order_id"]
    settled = http.get(f"/v1/orders/{order_id}", params={"wait": 30}, headers=customer)
    assert settled.json()["status"] == "CONFIRMED", settled.text

    def request_span() -> Span | None:
        return next(
            (
                s
                for s in receiver.all()
                if s.service == "momentum-gateway"
                and s.name == "POST /v1/orders"
                and s.attributes.get("momentum.correlation_id") == correlation_id
            ),
            None,
        )

    root = wait_for(request_span, timeout=60)
    assert root.parent_id == ""  # the client sent no trace context: the order starts one

    # Every agent step of the saga, up to the capture after the authorization.
    steps = {"orders order-commands", "inventory inventory-commands", "orders order-events"}
    steps |= {"payments payment-commands"}

    def trace() -> list[Span] | None:
        spans = [s for s in receiver.all() if s.trace_id == root.trace_id]
        captured = sum(s.name == "payments payment-commands" for s in spans) >= 2
        return spans if captured and steps <= {s.name for s in spans} else None

    spans = wait_for(trace, timeout=60)
    assert {s.service for s in spans} == {"momentum-gateway", "momentum-worker"}
    # Connected: every span but the request's hangs off another span of the same trace.
    ids = {s.span_id for s in spans}
    assert [s for s in spans if s.parent_id not in ids] == [root]
    # One order, one trace: no step about this order or its request is elsewhere.
    strays = [
        s
        for s in receiver.all()
        if s.trace_id != root.trace_id
        and (
            s.attributes.get("momentum.order_id") == order_id
            or s.attributes.get("momentum.correlation_id") == correlation_id
        )
    ]
    assert strays == []
    assert all(
        s.attributes.get("momentum.correlation_id") == correlation_id
        for s in spans
        if s.service == "momentum-worker"
    )
