"""The orders flow's web view: an order's live state, for the gateway."""

from __future__ import annotations

import asyncio
import math

from faust.web import Request, Response, View

from core.app import app
from streams.orders.changes import order_changes
from streams.orders.records import order_from_state, order_view
from streams.orders.rules import Order
from streams.web import found
from tables.orders import orders

# The longest a request may be held (the gateway asks for shorter slices).
MAX_WAIT_SECONDS = 30.0


@app.page("/orders/{order_id}/")
@app.table_route(table=orders.table, match_info="order_id")
async def get_order(web: View, request: Request, order_id: str) -> Response:
    """The order's state; with `?wait=S`, held until it settles (at most S seconds)."""
    order = order_from_state(orders.get(order_id))
    wait = wait_seconds(request.query.get("wait"))
    if wait > 0 and (order is None or not order.settled):
        order = await settled_or_current(order_id, order, wait)
    return found(web, order_view(order) if order is not None else None, f"order {order_id}")


def wait_seconds(raw: str | None) -> float:
    """`?wait` as seconds within [0, MAX_WAIT_SECONDS]; anything unreadable is no wait."""
    try:
        wait = float(raw or 0)
    except ValueError:
        return 0.0
    return min(max(wait, 0.0), MAX_WAIT_SECONDS) if math.isfinite(wait) else 0.0


async def settled_or_current(order_id: str, order: Order | None, wait: float) -> Order | None:
    """The order once it settles, or as it is when `wait` seconds have passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while order is None or not order.settled:
        remaining = deadline - loop.time()
        if remaining <= 0 or not await order_changes.next_change(order_id, remaining):
            break
        order = order_from_state(orders.get(order_id))
    return order
