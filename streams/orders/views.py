"""The orders flow's web view: an order's live state, for the gateway."""

from __future__ import annotations

from faust.web import Request, Response, View

from core.app import app
from streams.orders.records import order_from_state, order_view
from streams.web import found
from tables.orders import orders


@app.page("/orders/{order_id}/")
@app.table_route(table=orders.table, match_info="order_id")
async def get_order(web: View, request: Request, order_id: str) -> Response:
    order = order_from_state(orders.get(order_id))
    return found(web, order_view(order) if order is not None else None, f"order {order_id}")
