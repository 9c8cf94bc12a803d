"""Worker web views: live table state for the gateway, readiness and metrics.

Table routing sends a request for a key to the worker that holds the key's
partition, so the gateway may ask any worker.
"""

from __future__ import annotations

from typing import Any

from faust.web import Request, Response, View

from core.app import app
from streams import metrics
from streams.carts.records import cart_from_state, cart_view
from streams.inventory.records import (
    inventory_view,
    product_from_state,
    product_view,
    stock_from_state,
)
from streams.orders.records import order_from_state, order_view
from streams.rejections.records import log_from_state, log_view
from tables.carts import carts
from tables.inventory import catalog, inventory
from tables.orders import orders
from tables.rejections import rejections

NOT_FOUND = 404


@app.page("/ready/")
async def ready(web: View, request: Request) -> Response:
    recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
    assigned = bool(app.consumer.assignment()) if app.consumer else False
    status = "ready" if recovered and not app.rebalancing and assigned else "starting"
    body = {"status": status, "recovered": recovered, "rebalancing": app.rebalancing}
    return web.json(body, status=200 if status == "ready" else 503)


@app.page("/metrics/")
async def metrics_page(web: View, request: Request) -> Response:
    # As a header: aiohttp refuses a content_type argument that names a charset.
    return web.bytes(metrics.render(), headers={"Content-Type": metrics.CONTENT_TYPE})


def found(web: View, view: dict[str, Any] | None, what: str) -> Response:
    """The view as JSON, or 404 naming what was not found."""
    if view is None:
        return web.json({"error": f"{what} not found"}, status=NOT_FOUND)
    return web.json(view)


@app.page("/orders/{order_id}/")
@app.table_route(table=orders.table, match_info="order_id")
async def get_order(web: View, request: Request, order_id: str) -> Response:
    order = order_from_state(orders.get(order_id))
    return found(web, order_view(order) if order is not None else None, f"order {order_id}")


@app.page("/inventory/{sku}/")
@app.table_route(table=inventory.table, match_info="sku")
async def get_inventory(web: View, request: Request, sku: str) -> Response:
    record = inventory.get(sku)
    view = inventory_view(stock_from_state(sku, record)) if record is not None else None
    return found(web, view, f"sku {sku}")


@app.page("/products/{sku}/")
@app.table_route(table=catalog.table, match_info="sku")
async def get_product(web: View, request: Request, sku: str) -> Response:
    product = product_from_state(catalog.get(sku))
    return found(web, product_view(product) if product is not None else None, f"product {sku}")


@app.page("/carts/{cart_id}/")
@app.table_route(table=carts.table, match_info="cart_id")
async def get_cart(web: View, request: Request, cart_id: str) -> Response:
    cart = cart_from_state(carts.get(cart_id))
    return found(web, cart_view(cart) if cart is not None else None, f"cart {cart_id}")


# Requester ids are token subjects, free text: a query parameter, not a path segment,
# so no id is ever normalised or split by the router.
@app.page("/rejections/")
@app.table_route(table=rejections.table, query_param="requested_by")
async def get_rejections(web: View, request: Request) -> Response:
    requested_by = request.query["requested_by"]
    record = rejections.get(requested_by)
    view = log_view(requested_by, log_from_state(record)) if record is not None else None
    return found(web, view, f"rejections of {requested_by}")
