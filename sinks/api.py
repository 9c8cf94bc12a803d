"""The sink's small HTTP API: /health, /status (JSON) and /metrics (Prometheus text)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from core.http_observe import observe_requests
from sinks.metrics import BATCH_SECONDS
from sinks.service import SinkService


class StatusMetrics(Collector):
    """The /status figures as Prometheus metrics, read from the service at each scrape."""

    def __init__(self, status: Callable[[], dict[str, Any]]) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        status = self._status()
        connectors = sorted(status["connectors"].items())

        def per_topic(
            metric: GaugeMetricFamily | CounterMetricFamily, figures: dict[str, int]
        ) -> Metric:
            for topic, n in sorted(figures.items()):
                metric.add_metric([topic], n)
            return metric

        yield per_topic(
            GaugeMetricFamily(
                "momentum_sink_lag_records",
                "Records behind the high watermark, per topic.",
                labels=["topic"],
            ),
            status["lag"],
        )
        yield per_topic(
            CounterMetricFamily(
                "momentum_sink_records_written",
                "Records applied to Postgres, per topic.",
                labels=["topic"],
            ),
            status["written"],
        )
        yield per_topic(
            CounterMetricFamily(
                "momentum_sink_dead_letters",
                "Records sent to a dead-letter topic, per topic.",
                labels=["topic"],
            ),
            status["dead_letters"],
        )
        retries = CounterMetricFamily(
            "momentum_sink_retries",
            "Batch attempts that waited on Postgres or the registry",
            labels=["connector"],
        )
        running = GaugeMetricFamily(
            "momentum_sink_connector_running",
            "1 while the connector's task consumes.",
            labels=["connector"],
        )
        for name, connector in connectors:
            retries.add_metric([name], connector["retries"])
            running.add_metric([name], int(connector["state"] == "running"))
        yield retries
        yield running
        yield GaugeMetricFamily(
            "momentum_sink_db_available",
            "1 when every task's last Postgres contact worked.",
            value=int(status["db_available"]),
        )


def metrics_registry(status: Callable[[], dict[str, Any]]) -> CollectorRegistry:
    """The sink process's registry: only its own figures, not the default collectors."""
    registry = CollectorRegistry()
    registry.register(StatusMetrics(status))
    registry.register(BATCH_SECONDS)
    return registry


def create_app(service: SinkService) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(service.start)
        try:
            yield
        finally:
            # On SIGTERM: tasks abandon their batch uncommitted and leave the group.
            await run_in_threadpool(service.stop)

    app = FastAPI(title="Momentum sink", lifespan=lifespan)

    @app.get("/health")
    def health() -> JSONResponse:
        ok = service.healthy()
        return JSONResponse({"ok": ok}, status_code=200 if ok else 503)

    @app.get("/status")
    def status() -> dict[str, Any]:
        return service.status()

    # /metrics: the figures above, the batch timings, and the requests of this API.
    observe_requests(app, registry=metrics_registry(service.status))
    return app
