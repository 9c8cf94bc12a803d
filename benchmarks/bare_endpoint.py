"""The baseline for the gateway's ingress: a bare FastAPI endpoint taking an order body.

    python -m uvicorn benchmarks.bare_endpoint:app --no-access-log

Same framework, same server and flags as the gateway, same body shape validated
by a pydantic model, a 202 with a small JSON answer; no authentication, no
middleware, no Kafka. What the gateway does beyond this is its own cost.
"""

from __future__ import annotations

import uuid

from fastapi import FastAPI, status
from pydantic import BaseModel


class Line(BaseModel):
    sku: str
    quantity: int


class Payment(BaseModel):
    method: str
    token: str


class Order(BaseModel):
    items: list[Line]
    payment: Payment


class Accepted(BaseModel):
    order_id: str
    status: str


app = FastAPI()


@app.post("/v1/orders", status_code=status.HTTP_202_ACCEPTED)
async def place_order(order: Order) -> Accepted:
    return Accepted(order_id=str(uuid.uuid4()), status="PENDING")
