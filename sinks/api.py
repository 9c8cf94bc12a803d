"""The sink's small HTTP API: /health, /status (JSON) and /metrics (Prometheus text)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from sinks.service import SinkService

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _metric(name: str, kind: str, help: str, samples: list[tuple[str, object]]) -> list[str]:
    """One metric's HELP and TYPE lines and its samples (`labels` text, value)."""
    lines = [f"# HELP {name} {help}", f"# TYPE {name} {kind}"]
    return lines + [f"{name}{labels} {value}" for labels, value in samples]


def render_metrics(status: dict[str, Any]) -> str:
    """The /status figures in the Prometheus text exposition format."""

    def per_topic(figures: dict[str, int]) -> list[tuple[str, object]]:
        return [(f'{{topic="{_label(t)}"}}', n) for t, n in sorted(figures.items())]

    connectors = sorted(status["connectors"].items())
    lines = [
        *_metric(
            "momentum_sink_lag_records",
            "gauge",
            "Records behind the high watermark, per topic.",
            per_topic(status["lag"]),
        ),
        *_metric(
            "momentum_sink_records_written_total",
            "counter",
            "Records applied to Postgres, per topic.",
            per_topic(status["written"]),
        ),
        *_metric(
            "momentum_sink_dead_letters_total",
            "counter",
            "Records sent to a dead-letter topic, per topic.",
            per_topic(status["dead_letters"]),
        ),
        *_metric(
            "momentum_sink_retries_total",
            "counter",
            "Batch attempts that waited on Postgres or the registry",
            [(f'{{connector="{_label(n)}"}}', c["retries"]) for n, c in connectors],
        ),
        *_metric(
            "momentum_sink_connector_running",
            "gauge",
            "1 while the connector's task consumes.",
            [(f'{{connector="{_label(n)}"}}', int(c["state"] == "running")) for n, c in connectors],
        ),
        *_metric(
            "momentum_sink_db_available",
            "gauge",
            "1 when every task's last Postgres contact worked.",
            [("", int(status["db_available"]))],
        ),
    ]
    return "\n".join(lines) + "\n"


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

    @app.get("/metrics")
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(
            render_metrics(service.status()), media_type=PROMETHEUS_CONTENT_TYPE
        )

    return app
