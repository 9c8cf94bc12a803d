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


def render_metrics(status: dict[str, Any]) -> str:
    """The /status figures in the Prometheus text exposition format."""
    lines = [
        "# HELP momentum_sink_lag_records Records behind the high watermark, per topic.",
        "# TYPE momentum_sink_lag_records gauge",
    ]
    lines += [
        f'momentum_sink_lag_records{{topic="{_label(t)}"}} {n}'
        for t, n in sorted(status["lag"].items())
    ]
    lines += [
        "# HELP momentum_sink_records_written_total Records applied to Postgres, per topic.",
        "# TYPE momentum_sink_records_written_total counter",
    ]
    lines += [
        f'momentum_sink_records_written_total{{topic="{_label(t)}"}} {n}'
        for t, n in sorted(status["written"].items())
    ]
    lines += [
        "# HELP momentum_sink_dead_letters_total Records sent to a dead-letter topic, per topic.",
        "# TYPE momentum_sink_dead_letters_total counter",
    ]
    lines += [
        f'momentum_sink_dead_letters_total{{topic="{_label(t)}"}} {n}'
        for t, n in sorted(status["dead_letters"].items())
    ]
    lines += [
        "# HELP momentum_sink_retries_total Batch attempts that waited on Postgres or the registry",
        "# TYPE momentum_sink_retries_total counter",
    ]
    lines += [
        f'momentum_sink_retries_total{{connector="{_label(name)}"}} {c["retries"]}'
        for name, c in sorted(status["connectors"].items())
    ]
    lines += [
        "# HELP momentum_sink_connector_running 1 while the connector's task consumes.",
        "# TYPE momentum_sink_connector_running gauge",
    ]
    lines += [
        f'momentum_sink_connector_running{{connector="{_label(name)}"}} '
        f"{int(c['state'] == 'running')}"
        for name, c in sorted(status["connectors"].items())
    ]
    lines += [
        "# HELP momentum_sink_db_available 1 when every task's last Postgres contact worked.",
        "# TYPE momentum_sink_db_available gauge",
        f"momentum_sink_db_available {int(status['db_available'])}",
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
