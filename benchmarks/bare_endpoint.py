"""A bare FastAPI endpoint taking the order body: the ingress baseline.

Served by `benchmarks.http` with the gateway's own uvicorn arguments
(momentum.stack.uvicorn_args); it validates the same request model and answers
202 with an order id, and does nothing else (no auth, no Kafka). FastAPI's own
telemetry is off, as in the gateway.
"""

from __future__ import annotations

import uuid

from fastapi import FastAPI

from core.http_observe import NATIVE_TELEMETRY_OFF
from gateway.models import PlaceOrderRequest

app = FastAPI(**NATIVE_TELEMETRY_OFF)


@app.post("/v1/orders", status_code=202)
async def place_order(body: PlaceOrderRequest) -> dict[str, str]:
    return {"order_id": str(uuid.uuid4())}


@app.get("/ready")
async def ready() -> dict[str, str]:
    return {"status": "ok"}
